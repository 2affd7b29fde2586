/**
 * The one HTTP request every HTTP adapter makes: a POST of a JSON body with
 * a deadline, redirects not followed, and an answer read only on failure and
 * only up to MAX_RESPONSE_BYTES, turned into a DeliveryOutcome. A receiver
 * can therefore neither hold a delivery past its deadline, nor send the
 * platform elsewhere, nor make it buffer an unbounded answer.
 *
 * Details never carry the URL: Slack's and other webhooks' URLs are secrets.
 */
import { deadlineSignal, type DeadlineSignal } from './abort.ts';
import type { DeliveryOutcome } from './types.ts';

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** At most this much of a receiver's answer is read, and only to say what went wrong. */
export const MAX_RESPONSE_BYTES = 64 * 1024;
/** Characters of the receiver's answer kept in an outcome's detail (it is stored with the delivery and logged). */
export const MAX_DETAIL_CHARS = 300;

export interface JsonPost {
  url: string;
  /** The exact bytes sent (signatures are computed over them). */
  body: string;
  headers?: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
  /** For Retry-After given as an HTTP date. */
  nowMs: () => number;
}

/** POSTs and classifies the answer; never rejects. */
export async function postJson(request: JsonPost): Promise<DeliveryOutcome> {
  const deadline = deadlineSignal(request.signal, request.timeoutMs);
  try {
    return await post(request, deadline);
  } finally {
    deadline.dispose();
  }
}

async function post(request: JsonPost, deadline: DeadlineSignal): Promise<DeliveryOutcome> {
  const signal = deadline.signal;
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: 'POST',
      body: request.body,
      headers: { 'Content-Type': 'application/json', 'User-Agent': 'vpp-notify', ...request.headers },
      redirect: 'manual',
      signal,
    });
  } catch (error) {
    return { ok: false, retryable: true, detail: describeFailure(error, request, deadline) };
  }
  if (response.status >= 200 && response.status < 300) {
    // Accepted: what the receiver says next does not matter, and reading it could hang.
    response.body?.cancel().catch(() => undefined);
    return { ok: true };
  }
  const body = await readBounded(response.body, MAX_RESPONSE_BYTES);
  return classifyResponse(response.status, response.headers.get('retry-after'), body, request.nowMs());
}

/**
 * What a non-2xx answer means for the delivery:
 * - 3xx: not followed, so not delivered; retrying would get the same answer;
 * - 408, 429, 5xx: the receiver is busy or down: retryable, after its
 *   Retry-After when it gave one;
 * - other 4xx: the receiver refuses this request: not retryable.
 */
export function classifyResponse(status: number, retryAfter: string | null, body: string, nowMs: number): DeliveryOutcome {
  if (status >= 200 && status < 300) return { ok: true };
  const answer = snippet(body);
  const detail = `HTTP ${status}${answer === '' ? '' : `: ${answer}`}`;
  if (status >= 300 && status < 400) return { ok: false, retryable: false, detail: `HTTP ${status}: redirect not followed` };
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = retryAfter === null ? undefined : parseRetryAfter(retryAfter, nowMs);
    return retryAfterMs === undefined ? { ok: false, retryable: true, detail } : { ok: false, retryable: true, retryAfterMs, detail };
  }
  return { ok: false, retryable: false, detail };
}

/**
 * Retry-After (RFC 9110 §10.2.3) as milliseconds from nowMs: delay-seconds
 * or an HTTP-date; undefined when it is neither. A date in the past is 0.
 */
export function parseRetryAfter(value: string, nowMs: number): number | undefined {
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) {
    const seconds = Number(trimmed);
    return Number.isSafeInteger(seconds * 1000) ? seconds * 1000 : undefined;
  }
  const dateMs = Date.parse(trimmed);
  if (Number.isNaN(dateMs) || !/[a-z]/i.test(trimmed)) return undefined;
  return Math.max(0, dateMs - nowMs);
}

/**
 * Reads at most maxBytes of a body, then cancels the rest, so a receiver
 * answering megabytes costs no more than maxBytes (plus one chunk in
 * flight). A read cut short (deadline, reset) keeps what arrived.
 */
export async function readBounded(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<string> {
  if (body === null) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // Keep what arrived: it is only for the detail.
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8');
}

/** Whitespace collapsed, cut to MAX_DETAIL_CHARS. */
export function snippet(text: string, maxChars = MAX_DETAIL_CHARS): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= maxChars ? flat : `${flat.slice(0, maxChars - 1)}…`;
}

function describeFailure(error: unknown, request: JsonPost, deadline: DeadlineSignal): string {
  if (deadline.timedOut()) return `timed out after ${request.timeoutMs} ms`;
  if (request.signal.aborted) return 'aborted';
  return describeError(error);
}

/** fetch wraps the socket's error (ECONNREFUSED, ECONNRESET, ...) in `cause`; say both. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return snippet(String(error));
  const cause = error.cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return snippet(`${error.message}: ${code ?? cause.message}`);
  }
  return snippet(error.message);
}

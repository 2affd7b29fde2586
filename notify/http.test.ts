import { describe, expect, it } from 'vitest';
import { classifyResponse, MAX_DETAIL_CHARS, MAX_RESPONSE_BYTES, parseRetryAfter, readBounded } from './http.ts';

describe('parseRetryAfter', () => {
  const now = Date.UTC(2025, 0, 1, 0, 0, 0);
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('7', now)).toBe(7_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
  });
  it('reads an HTTP-date, a past one as 0', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
  });
  it('ignores anything else', () => {
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
  });
});

describe('classifyResponse', () => {
  it('2xx is ok', () => {
    expect(classifyResponse(202, null, '', 0)).toEqual({ ok: true });
  });
  it('408, 429 and 5xx are retryable, with Retry-After when given', () => {
    expect(classifyResponse(408, null, '', 0)).toMatchObject({ retryable: true });
    expect(classifyResponse(429, '3', 'slow down', 0)).toEqual({ ok: false, retryable: true, retryAfterMs: 3_000, detail: 'HTTP 429: slow down' });
    expect(classifyResponse(503, '10', '', 0)).toMatchObject({ retryable: true, retryAfterMs: 10_000 });
    expect(classifyResponse(500, null, '', 0)).toEqual({ ok: false, retryable: true, detail: 'HTTP 500' });
  });
  it('other 4xx and 3xx are not retryable', () => {
    expect(classifyResponse(403, null, 'action_prohibited', 0)).toEqual({ ok: false, retryable: false, detail: 'HTTP 403: action_prohibited' });
    expect(classifyResponse(301, null, '', 0)).toEqual({ ok: false, retryable: false, detail: 'HTTP 301: redirect not followed' });
  });
  it('keeps the detail short', () => {
    const outcome = classifyResponse(500, null, 'x'.repeat(100_000), 0);
    expect(outcome.ok === false && outcome.detail.length).toBeLessThanOrEqual(MAX_DETAIL_CHARS + 10);
  });
});

describe('readBounded', () => {
  it('pulls no more than the bound (plus the chunk in hand) from a 10 MB body, then cancels it', async () => {
    let pulled = 0;
    let cancelled = false;
    const chunk = new Uint8Array(16 * 1024).fill(120);
    const body = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (pulled >= 10 * 1024 * 1024) return controller.close();
          pulled += chunk.byteLength;
          controller.enqueue(chunk);
        },
        cancel() {
          cancelled = true;
        },
      },
      { highWaterMark: 0 },
    );
    const text = await readBounded(body, MAX_RESPONSE_BYTES);
    expect(text.length).toBe(MAX_RESPONSE_BYTES);
    expect(pulled).toBeLessThanOrEqual(MAX_RESPONSE_BYTES + chunk.byteLength);
    expect(cancelled).toBe(true);
  });

  it('keeps what arrived when the body fails midway', async () => {
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) return controller.error(new Error('reset'));
        sent = true;
        controller.enqueue(new TextEncoder().encode('partial'));
      },
    });
    expect(await readBounded(body, MAX_RESPONSE_BYTES)).toBe('partial');
  });
});

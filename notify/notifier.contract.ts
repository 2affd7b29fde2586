/**
 * The contract every HTTP Notifier keeps (see Notifier in ./types.ts), run
 * against each adapter with a real HTTP receiver on a loopback port:
 *
 * - a fired event reaches the receiver, and its success answer is `ok`;
 * - 500, 503, 408 → retryable; 429 with Retry-After: 7 → retryable with
 *   retryAfterMs 7000;
 * - connection refused → retryable; a receiver that never answers →
 *   retryable once the adapter's timeout has passed; an aborted signal →
 *   retryable, at once;
 * - 400, 404 → not retryable; a redirect is not followed and not retryable,
 *   and the detail names its status;
 * - a receiver answering 10 MB of error body costs a bounded read: the
 *   detail is short and the call returns quickly;
 * - deliver never rejects.
 *
 * The MQTT adapter has no HTTP answer; it has its own test (mqtt.test.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertEvent } from '../protocol/index.ts';
import { MAX_DETAIL_CHARS } from './http.ts';
import { answer, hugeAnswer, refusedUrl, startReceiver, type ReceivedRequest, type Receiver } from './test-receiver.ts';
import { makeEvent } from './test-fixtures.ts';
import type { DeliveryOutcome, Notifier } from './types.ts';

export interface NotifierContractFactory {
  /** The adapter, sending to a receiver at `receiverUrl` (scheme, host and port), with the given per-request timeout. */
  make(receiverUrl: string, options: { timeoutMs: number }): Notifier;
  /** What the real service answers on success. */
  success: { status: number; body: string };
  /** Whether a request the receiver got carries this event (parsed from its body and headers). */
  carries(request: ReceivedRequest, event: AlertEvent): boolean;
}

/** For the receiver that never answers. */
const SHORT_TIMEOUT_MS = 400;
/** For every other case: generous, so a loaded machine does not turn an answer into a timeout. */
const TIMEOUT_MS = 5_000;

export function describeNotifierContract(name: string, factory: NotifierContractFactory): void {
  describe(`Notifier contract: ${name}`, () => {
    let receiver: Receiver;
    const event = makeEvent('fired');

    beforeEach(async () => {
      receiver = await startReceiver(answer(factory.success.status, factory.success.body));
    });
    afterEach(async () => {
      await receiver.close();
    });

    const deliver = (url = receiver.url, signal = new AbortController().signal, timeoutMs = TIMEOUT_MS): Promise<DeliveryOutcome> =>
      factory.make(url, { timeoutMs }).deliver(event, signal);

    it('delivers a fired event: the receiver gets it and the outcome is ok', async () => {
      const outcome = await deliver();
      expect(outcome).toEqual({ ok: true });
      expect(receiver.requests).toHaveLength(1);
      const request = receiver.requests[0]!;
      expect(request.method).toBe('POST');
      expect(request.headers['content-type']).toMatch(/^application\/json/);
      expect(factory.carries(request, event)).toBe(true);
    });

    it('names itself', () => {
      expect(factory.make(receiver.url, { timeoutMs: TIMEOUT_MS }).name).toBe(name);
    });

    for (const status of [500, 503, 408]) {
      it(`${status} is retryable`, async () => {
        receiver.respond = answer(status, 'down for maintenance');
        const outcome = await deliver();
        expect(outcome).toMatchObject({ ok: false, retryable: true });
        expect(outcome.ok === false && outcome.detail).toContain(String(status));
      });
    }

    it('429 with Retry-After: 7 is retryable after 7000 ms', async () => {
      receiver.respond = answer(429, 'rate_limited', { 'Retry-After': '7' });
      expect(await deliver()).toMatchObject({ ok: false, retryable: true, retryAfterMs: 7000 });
    });

    it('connection refused is retryable', async () => {
      const outcome = await deliver(await refusedUrl());
      expect(outcome).toMatchObject({ ok: false, retryable: true });
      expect(outcome.ok === false && outcome.detail).toMatch(/ECONNREFUSED/);
    });

    it('a receiver that never answers is retryable once the timeout has passed', async () => {
      receiver.respond = () => undefined; // holds the request open
      const startedMs = Date.now();
      const outcome = await deliver(receiver.url, new AbortController().signal, SHORT_TIMEOUT_MS);
      const elapsedMs = Date.now() - startedMs;
      expect(outcome).toMatchObject({ ok: false, retryable: true });
      expect(outcome.ok === false && outcome.detail).toMatch(/timed out/);
      expect(elapsedMs).toBeGreaterThanOrEqual(SHORT_TIMEOUT_MS - 20);
      expect(elapsedMs).toBeLessThan(SHORT_TIMEOUT_MS + 3_000);
    });

    it('an aborted signal ends the request at once, retryable', async () => {
      receiver.respond = () => undefined;
      const controller = new AbortController();
      const pending = deliver(receiver.url, controller.signal);
      setTimeout(() => controller.abort(), 20);
      const startedMs = Date.now();
      const outcome = await pending;
      expect(outcome).toMatchObject({ ok: false, retryable: true });
      expect(Date.now() - startedMs).toBeLessThan(2_000);
    });

    for (const status of [400, 404]) {
      it(`${status} is not retryable`, async () => {
        receiver.respond = answer(status, 'invalid_payload');
        const outcome = await deliver();
        expect(outcome).toMatchObject({ ok: false, retryable: false });
        expect(outcome.ok === false && outcome.detail).toContain('invalid_payload');
      });
    }

    it('a redirect is not followed and not retryable', async () => {
      const other = await startReceiver(answer(factory.success.status, factory.success.body));
      try {
        receiver.respond = answer(302, '', { Location: `${other.url}/elsewhere` });
        const outcome = await deliver();
        expect(outcome).toMatchObject({ ok: false, retryable: false });
        expect(outcome.ok === false && outcome.detail).toContain('302');
        expect(other.requests).toHaveLength(0);
      } finally {
        await other.close();
      }
    });

    it('reads a 10 MB error answer only up to its bound: the detail stays short', async () => {
      receiver.respond = hugeAnswer(500, 10 * 1024 * 1024);
      const startedMs = Date.now();
      const outcome = await deliver();
      expect(outcome).toMatchObject({ ok: false, retryable: true });
      expect(outcome.ok === false && outcome.detail.length).toBeLessThanOrEqual(MAX_DETAIL_CHARS + 20);
      // Reading all 10 MB would take longer than a bounded read, but not reliably so: the detail is the proof, this a sanity bound.
      expect(Date.now() - startedMs).toBeLessThan(3_000);
    });
  });
}

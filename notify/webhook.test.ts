import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { makeEvent, T0 } from './test-fixtures.ts';
import { startReceiver, type Receiver } from './test-receiver.ts';
import { buildWebhookBody, buildWebhookRequest, createWebhookNotifier, signWebhook, verifyWebhookSignature } from './webhook.ts';

const SECRET = 'whsec-0123456789abcdef';
const event = makeEvent('acknowledged');

describe('webhook payload and signature', () => {
  it('the body is { eventId, alert, transition }', () => {
    expect(JSON.parse(buildWebhookBody(event))).toEqual({ eventId: event.eventId, alert: event.alert, transition: event.transition });
  });

  it('signs "<timestamp>.<body>" with HMAC-SHA256, v1=<hex>, and the headers carry event id and timestamp', () => {
    const { body, headers } = buildWebhookRequest(event, SECRET, T0 + 999);
    const timestamp = String(Math.floor(T0 / 1000));
    expect(headers['X-VPP-Event-Id']).toBe(event.eventId);
    expect(headers['X-VPP-Timestamp']).toBe(timestamp);
    expect(headers['Content-Type']).toBe('application/json');
    expect(headers['X-VPP-Signature']).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(headers['X-VPP-Signature']).toBe(signWebhook(SECRET, Number(timestamp), body));
  });

  it('verifies what it signed', () => {
    const { body, headers } = buildWebhookRequest(event, SECRET, T0);
    const input = { secret: SECRET, timestamp: headers['X-VPP-Timestamp']!, body, signature: headers['X-VPP-Signature']!, nowMs: T0 + 60_000 };
    expect(verifyWebhookSignature(input)).toEqual({ ok: true });
    expect(verifyWebhookSignature({ ...input, body: Buffer.from(body) })).toEqual({ ok: true });
  });

  it('refuses a tampered body, a wrong secret or a moved timestamp', () => {
    const { body, headers } = buildWebhookRequest(event, SECRET, T0);
    const input = { secret: SECRET, timestamp: headers['X-VPP-Timestamp']!, body, signature: headers['X-VPP-Signature']!, nowMs: T0 };
    expect(verifyWebhookSignature({ ...input, body: body.replace('"critical"', '"info"') })).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyWebhookSignature({ ...input, secret: 'another-secret-0123456' })).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyWebhookSignature({ ...input, timestamp: Number(input.timestamp) + 1 })).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a stale timestamp (a replay) and one too far ahead', () => {
    const { body, headers } = buildWebhookRequest(event, SECRET, T0);
    const input = { secret: SECRET, timestamp: headers['X-VPP-Timestamp']!, body, signature: headers['X-VPP-Signature']! };
    expect(verifyWebhookSignature({ ...input, nowMs: T0 + 5 * 60_000 })).toEqual({ ok: true });
    expect(verifyWebhookSignature({ ...input, nowMs: T0 + 5 * 60_000 + 1_001 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifyWebhookSignature({ ...input, nowMs: T0 - 10 * 60_000 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifyWebhookSignature({ ...input, nowMs: T0 + 60 * 60_000, toleranceMs: 2 * 60 * 60_000 })).toEqual({ ok: true });
  });

  it('refuses malformed input without throwing', () => {
    const { body, headers } = buildWebhookRequest(event, SECRET, T0);
    const input = { secret: SECRET, timestamp: headers['X-VPP-Timestamp']!, body, signature: headers['X-VPP-Signature']!, nowMs: T0 };
    expect(verifyWebhookSignature({ ...input, timestamp: 'yesterday' })).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyWebhookSignature({ ...input, signature: 'sha256=abc' })).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyWebhookSignature({ ...input, signature: 'v1=abc' })).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyWebhookSignature({ ...input, signature: `v1=${'0'.repeat(64)}, ${input.signature}` })).toEqual({ ok: true });
  });

  it('refuses a short secret at creation', () => {
    expect(() => createWebhookNotifier({ url: 'http://127.0.0.1:1', secret: 'short', clock: Date.now })).toThrow(/16/);
  });
});

describe('webhook over HTTP', () => {
  let receiver: Receiver | undefined;
  afterEach(async () => {
    await receiver?.close();
    receiver = undefined;
  });

  it('a receiver verifying the raw body accepts the request', async () => {
    receiver = await startReceiver((request, response) => {
      const verdict = verifyWebhookSignature({
        secret: SECRET,
        timestamp: String(request.headers['x-vpp-timestamp']),
        body: request.body,
        signature: String(request.headers['x-vpp-signature']),
        nowMs: Date.now(),
      });
      response.writeHead(verdict.ok ? 204 : 401).end();
    });
    const notifier = createWebhookNotifier({ url: receiver.url, secret: SECRET, clock: Date.now });
    expect(await notifier.deliver(event, new AbortController().signal)).toEqual({ ok: true });
    const wrong = createWebhookNotifier({ url: receiver.url, secret: 'not-the-receivers-secret', clock: Date.now });
    expect(await wrong.deliver(event, new AbortController().signal)).toMatchObject({ ok: false, retryable: false, detail: 'HTTP 401' });
  });

  it('every attempt is signed at its own time, so a late retry still verifies', async () => {
    let nowMs = T0;
    const timestamps: string[] = [];
    const server = createServer((req, res) => {
      timestamps.push(String(req.headers['x-vpp-timestamp']));
      req.resume();
      req.on('end', () => res.writeHead(200).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const notifier = createWebhookNotifier({ url, secret: SECRET, clock: () => nowMs });
      await notifier.deliver(event, new AbortController().signal);
      nowMs += 3 * 60 * 60_000;
      await notifier.deliver(event, new AbortController().signal);
      expect(timestamps.map(Number)).toEqual([T0 / 1000, T0 / 1000 + 3 * 3600]);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

/**
 * The contract every IngestSource keeps (see IngestSource in ../types.ts),
 * run against each implementation on a real broker over real sockets, with
 * a device publishing through MQTT.js:
 *
 * - nothing is acknowledged upstream before the message's ack(): no PUBACK
 *   to the device (tap), no PUBACK to the broker (subscription, whose
 *   broker answers the device itself);
 * - a message never acknowledged comes back after a restart of the source;
 * - close() completes the stream;
 * - no more than the in-flight bound is handed out unacknowledged, and
 *   acknowledging lets the rest in;
 * - inflight() reports the count and the age of the oldest.
 */
import type { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import type { InboundMessage, IngestSource } from '../types.ts';

export interface SourceFixture {
  source: IngestSource;
  /** Messages handed out, in order (the fixture subscribes to messages$). */
  received: InboundMessage[];
  /** True once messages$ completed. */
  completed(): boolean;
  /** The publishing device. */
  device: MqttClient;
  /** Publishes at QoS 1 as the device; the device keeps what has no PUBACK yet to send again. */
  publish(payload: string): void;
  /** How many of the device's messages the source has acknowledged upstream so far. */
  upstreamAcks(): number;
  /** Resolves once every acknowledgement the source sent so far has arrived where it goes. */
  settle(): Promise<void>;
  /**
   * Stops this source as a crash would (nothing more acknowledged) and
   * starts a new one the way the platform restarts it; the device
   * reconnects and sends again what it had no PUBACK for, as firmware does.
   */
  restart(): Promise<SourceFixture>;
  close(): Promise<void>;
}

export interface SourceFactory {
  /**
   * True when no more than maxInflight are ever handed out. False for a
   * source that stops reading at the bound but still hands out what its
   * last read already carried (the tap: one socket read may hold many
   * publishes); for it, the case checks that reading stops.
   */
  exactBound: boolean;
  /** A device `dev-1` may publish; `maxInflight` bounds what the source hands out unacknowledged. */
  start(options: { maxInflight: number }): Promise<SourceFixture>;
}


async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const seqOf = (message: InboundMessage) => (JSON.parse(message.payload.toString()) as { seq: number }).seq;
const sample = (seq: number) => JSON.stringify({ ts: 1_700_000_000_000 + seq, seq, metrics: { powerW: seq } });

export function runIngestSourceContract(name: string, factory: SourceFactory): void {
  describe(`IngestSource contract: ${name}`, () => {
    it('acknowledges nothing upstream before ack(), and exactly once after', async () => {
      const fixture = await factory.start({ maxInflight: 100 });
      try {
        fixture.publish(sample(1));
        await waitFor(() => fixture.received.length === 1, 'the message');
        await fixture.settle();
        expect(fixture.upstreamAcks()).toBe(0);
        expect(fixture.source.inflight().count).toBe(1);
        fixture.received[0]!.ack();
        fixture.received[0]!.ack();
        await waitFor(() => fixture.upstreamAcks() === 1, 'the acknowledgement upstream');
        await fixture.settle();
        expect(fixture.upstreamAcks()).toBe(1);
        expect(fixture.source.inflight()).toEqual({ count: 0, oldestReceivedAtMs: null });
      } finally {
        await fixture.close();
      }
    });

    it('hands out again after a restart what was not acknowledged, and only that', async () => {
      const first = await factory.start({ maxInflight: 100 });
      let second: SourceFixture | undefined;
      try {
        for (let seq = 1; seq <= 3; seq++) first.publish(sample(seq));
        await waitFor(() => first.received.length === 3, '3 messages');
        first.received[0]!.ack();
        first.received[1]!.ack();
        await waitFor(() => first.upstreamAcks() === 2, 'the 2 acknowledgements upstream');
        second = await first.restart();
        const fresh = second;
        await waitFor(() => fresh.received.length >= 1, 'the unacknowledged message');
        await fresh.settle();
        expect(fresh.received.map(seqOf)).toEqual([3]);
      } finally {
        await (second ?? first).close();
      }
    });

    it('completes messages$ on close(); acknowledging after close still works', async () => {
      const fixture = await factory.start({ maxInflight: 100 });
      try {
        fixture.publish(sample(1));
        await waitFor(() => fixture.received.length === 1, 'the message');
        fixture.source.close();
        expect(fixture.completed()).toBe(true);
        fixture.source.close();
        fixture.received[0]!.ack();
        await waitFor(() => fixture.upstreamAcks() === 1, 'the acknowledgement upstream');
        expect(fixture.source.inflight().count).toBe(0);
      } finally {
        await fixture.close();
      }
    });

    it('stops handing out once maxInflight are unacknowledged, reports the oldest, and resumes on ack', async () => {
      const fixture = await factory.start({ maxInflight: 3 });
      try {
        const beforeMs = Date.now();
        for (let seq = 1; seq <= 8; seq++) fixture.publish(sample(seq));
        await waitFor(() => fixture.received.length >= 3, '3 messages');
        await fixture.settle();
        const handedOut = fixture.received.length;
        if (factory.exactBound) expect(handedOut).toBe(3);
        const report = fixture.source.inflight();
        expect(report.count).toBe(handedOut);
        expect(report.oldestReceivedAtMs).toBeGreaterThanOrEqual(beforeMs);
        // Sent after the bound was reached: nothing of it is handed out before an ack.
        for (let seq = 9; seq <= 16; seq++) fixture.publish(sample(seq));
        await fixture.settle();
        expect(fixture.received).toHaveLength(handedOut);
        await waitFor(() => {
          for (const message of fixture.received) message.ack();
          return fixture.received.length === 16;
        }, 'all 16 messages while acknowledging');
        for (const message of fixture.received) message.ack();
        expect(fixture.received.map(seqOf)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
        expect(fixture.source.inflight().count).toBe(0);
      } finally {
        await fixture.close();
      }
    });
  });
}

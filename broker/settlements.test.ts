import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { deviceTopic } from '../protocol/index.ts';
import { Settlements, type TappedPublish } from './tap.ts';
import { roundTrip, startTestBed, waitUntil, type TestBed } from './test-helpers.ts';

/** A tap that holds every publish until the test releases it, and can watch for the next one. */
function createHoldingTap() {
  const held: Array<{ message: TappedPublish; done: (err?: Error) => void }> = [];
  let onNext: (() => void) | undefined;
  return {
    held,
    /** Calls `observer` (once) synchronously when the next publish reaches the tap. */
    whenNext(observer: () => void) {
      onNext = observer;
    },
    tap: {
      onDevicePublish(message: TappedPublish, done: (err?: Error) => void) {
        held.push({ message, done });
        const observer = onNext;
        onNext = undefined;
        observer?.();
      },
    },
  };
}

function writeQoS0(client: MqttClient, topic: string, payload: string): Promise<void> {
  return new Promise((resolve, reject) => {
    client.publish(topic, payload, { qos: 0 }, (err) => (err ? reject(err) : resolve()));
  });
}

describe('tap settlements per broker', () => {
  const beds: TestBed[] = [];
  afterEach(async () => {
    await Promise.all(beds.splice(0).map((bed) => bed.close()));
  });

  /**
   * A broker whose one device has a publish held by the tap and a second
   * one waiting, unread, in its socket (a window of one per client).
   */
  async function startWithBlockedDevice() {
    const holding = createHoldingTap();
    const bed = await startTestBed({ tap: holding.tap, tapWindow: { maxPendingPerClient: 1 } });
    beds.push(bed);
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    const service = await bed.connectService('vpp-control');
    const topic = deviceTopic('bat-1', 'telemetry');
    await writeQoS0(device, topic, 'first');
    await waitUntil(() => holding.held.length === 1, 'the tap holds the first publish');
    await writeQoS0(device, topic, 'second');
    // On another connection: the device's own reads are stopped.
    await roundTrip(service);
    expect(holding.held.length).toBe(1);
    return holding;
  }

  it("never settles one broker's publishes in another broker's turn", async () => {
    const a = await startWithBlockedDevice();
    const b = await startWithBlockedDevice();

    // Settling A's first publish reopens A's reads, so A's tap gets the second
    // publish within A's settlement turn. Whatever B's settlement does must
    // not have happened yet when that turn's microtasks run.
    let bReadAgainInATurn: boolean | undefined;
    a.whenNext(() => queueMicrotask(() => (bReadAgainInATurn = b.held.length > 1)));
    a.held[0]!.done();
    b.held[0]!.done();

    await waitUntil(() => a.held.length === 2 && b.held.length === 2, 'both brokers read their second publish');
    expect(bReadAgainInATurn).toBe(false);
    for (const holding of [a, b]) {
      expect(holding.held.map((entry) => entry.message.payload.toString('utf8'))).toEqual(['first', 'second']);
    }
  });
});

describe('Settlements', () => {
  it('runs settlements in order in a later macrotask, each queue in its own', async () => {
    const first = new Settlements();
    const second = new Settlements();
    const order: string[] = [];
    first.later(() => {
      order.push('first 1');
      queueMicrotask(() => order.push('microtask after first'));
    });
    second.later(() => order.push('second 1'));
    first.later(() => order.push('first 2'));
    expect(order).toEqual([]);

    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['first 1', 'first 2', 'microtask after first', 'second 1']);
  });
});

import { describe, expect, it } from 'vitest';
import { PacketSizeScanner } from './packet-size-guard.ts';

/** An MQTT-shaped packet: type byte, Remaining Length varint, body. */
function packet(bodyBytes: number): Buffer {
  const length: number[] = [];
  let rest = bodyBytes;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    length.push(byte);
  } while (rest > 0);
  return Buffer.concat([Buffer.from([0x30, ...length]), Buffer.alloc(bodyBytes, 0x61)]);
}

function scanInChunks(scanner: PacketSizeScanner, stream: Buffer, chunkBytes: number): number | undefined {
  for (let i = 0; i < stream.length; i += chunkBytes) {
    const found = scanner.scan(stream.subarray(i, i + chunkBytes));
    if (found !== undefined) return found;
  }
  return undefined;
}

describe('PacketSizeScanner', () => {
  it('passes packets up to the limit, whatever the chunking', () => {
    // 200 body bytes take a 2-byte Remaining Length: 203 bytes in total.
    const stream = Buffer.concat([packet(0), packet(5), packet(200), packet(127), packet(128)]);
    for (const chunkBytes of [1, 2, 3, 7, 64, stream.length]) {
      expect(scanInChunks(new PacketSizeScanner(203), stream, chunkBytes)).toBeUndefined();
    }
  });

  it('reports the first packet over the limit with its total size, whatever the chunking', () => {
    const stream = Buffer.concat([packet(10), packet(201), packet(10)]);
    for (const chunkBytes of [1, 2, 5, stream.length]) {
      expect(scanInChunks(new PacketSizeScanner(203), stream, chunkBytes)).toBe(204);
    }
  });

  it('reports a packet from its header alone', () => {
    const scanner = new PacketSizeScanner(256 * 1024);
    expect(scanner.scan(Buffer.from([0x30, 0xff, 0xff, 0xff]))).toBeUndefined();
    expect(scanner.scan(Buffer.from([0x7f]))).toBe(1 + 4 + 268_435_455);
  });

  it('stops at a Remaining Length longer than four bytes, which the MQTT parser rejects', () => {
    const scanner = new PacketSizeScanner(10);
    expect(scanner.scan(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]))).toBeUndefined();
    expect(scanner.scan(packet(1_000))).toBeUndefined();
  });
});

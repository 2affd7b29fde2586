/**
 * Packet size limit. aedes and mqtt-packet have none: the parser buffers a
 * packet until all of its declared length has arrived, so one CONNECT or
 * PUBLISH declaring 256 MB would make the broker buffer 256 MB. The guard
 * reads only the fixed headers (type byte and Remaining Length, MQTT-2.2.3)
 * as bytes arrive and reports a packet as soon as its header declares more
 * than the limit, before its body is read.
 */
import type { Socket } from 'node:net';

type ScanState = 'header' | 'length' | 'body' | 'stopped';

/** Walks the packet boundaries of one connection's inbound byte stream. */
export class PacketSizeScanner {
  private state: ScanState = 'header';
  private lengthValue = 0;
  private lengthMultiplier = 1;
  private lengthBytes = 0;
  private bodyBytesLeft = 0;

  constructor(private readonly maxPacketBytes: number) {}

  /**
   * Feeds the next chunk of the stream. Returns the total size in bytes
   * (fixed header included) of a packet over the limit, else undefined.
   * After a report, or after a Remaining Length longer than 4 bytes (which
   * the MQTT parser rejects by itself), the scanner stops looking.
   */
  scan(chunk: Buffer): number | undefined {
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case 'header':
          i += 1;
          this.state = 'length';
          this.lengthValue = 0;
          this.lengthMultiplier = 1;
          this.lengthBytes = 0;
          break;
        case 'length': {
          const byte = chunk[i]!;
          i += 1;
          this.lengthValue += (byte & 0x7f) * this.lengthMultiplier;
          this.lengthMultiplier *= 128;
          this.lengthBytes += 1;
          if ((byte & 0x80) !== 0) {
            if (this.lengthBytes === 4) this.state = 'stopped';
            break;
          }
          const totalBytes = 1 + this.lengthBytes + this.lengthValue;
          if (totalBytes > this.maxPacketBytes) {
            this.state = 'stopped';
            return totalBytes;
          }
          this.bodyBytesLeft = this.lengthValue;
          this.state = this.bodyBytesLeft === 0 ? 'header' : 'body';
          break;
        }
        case 'body': {
          const skipped = Math.min(this.bodyBytesLeft, chunk.length - i);
          i += skipped;
          this.bodyBytesLeft -= skipped;
          if (this.bodyBytesLeft === 0) this.state = 'header';
          break;
        }
        case 'stopped':
          return undefined;
      }
    }
    return undefined;
  }
}

/**
 * Watches the bytes that the MQTT client reads from `socket` and calls
 * `onOversized` synchronously, before the chunk reaches the MQTT parser.
 *
 * Contract: call this after aedes has attached its 'readable' listener.
 * With a 'readable' listener present, a 'data' listener does not switch the
 * socket to flowing mode; it only sees each chunk that `read()` returns, so
 * aedes keeps its read-when-done backpressure.
 */
export function guardPacketSize(
  socket: Socket,
  maxPacketBytes: number,
  onOversized: (totalBytes: number) => void,
): void {
  const scanner = new PacketSizeScanner(maxPacketBytes);
  socket.on('data', (chunk: Buffer) => {
    const oversizedBytes = scanner.scan(chunk);
    if (oversizedBytes !== undefined) onOversized(oversizedBytes);
  });
}

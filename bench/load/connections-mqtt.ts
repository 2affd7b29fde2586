/**
 * The few MQTT 3.1.1 packets a simulated device needs, encoded and parsed by
 * hand so that one generator process can hold tens of thousands of
 * connections: an MQTT.js client costs tens of kilobytes and its own timers
 * per connection, this costs a socket and a small record.
 *
 * Encodes CONNECT (credentials, retained QoS 1 will, clean session), PUBLISH
 * QoS 0/1, PUBACK, SUBSCRIBE, PINGREQ and DISCONNECT; parses every packet a
 * broker sends a client (MQTT-2.2: fixed header, remaining length). Packet
 * layouts follow the MQTT 3.1.1 specification, section 3.
 */

export const PACKET = {
  connack: 2,
  publish: 3,
  puback: 4,
  suback: 9,
  pingresp: 13,
} as const;

/** One packet from the broker: its type (upper nibble), flags (lower nibble) and body. */
export interface InboundPacket {
  type: number;
  flags: number;
  body: Buffer;
}

export interface ConnectOptions {
  clientId: string;
  username: string;
  password: string;
  keepAliveS: number;
  will?: { topic: string; payload: Buffer; qos: 0 | 1; retain: boolean };
}

/** MQTT-2.2.3: remaining length, 7 bits per byte, at most 4 bytes. */
function remainingLengthBytes(length: number): number[] {
  const bytes: number[] = [];
  let value = length;
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    bytes.push(byte);
  } while (value > 0);
  return bytes;
}

function writeString(buffer: Buffer, offset: number, value: Buffer): number {
  buffer.writeUInt16BE(value.length, offset);
  value.copy(buffer, offset + 2);
  return offset + 2 + value.length;
}

function packet(firstByte: number, bodyLength: number): { buffer: Buffer; offset: number } {
  const lengthBytes = remainingLengthBytes(bodyLength);
  const buffer = Buffer.allocUnsafe(1 + lengthBytes.length + bodyLength);
  buffer[0] = firstByte;
  for (let i = 0; i < lengthBytes.length; i++) buffer[1 + i] = lengthBytes[i]!;
  return { buffer, offset: 1 + lengthBytes.length };
}

const PROTOCOL_NAME = Buffer.from('MQTT');

/** MQTT-3.1: CONNECT, protocol level 4, clean session. */
export function encodeConnect(options: ConnectOptions): Buffer {
  const clientId = Buffer.from(options.clientId);
  const username = Buffer.from(options.username);
  const password = Buffer.from(options.password);
  const willTopic = options.will ? Buffer.from(options.will.topic) : undefined;
  let flags = 0x80 | 0x40 | 0x02;
  if (options.will) flags |= 0x04 | (options.will.qos << 3) | (options.will.retain ? 0x20 : 0);
  const bodyLength =
    2 + PROTOCOL_NAME.length + 1 + 1 + 2 +
    2 + clientId.length +
    (options.will ? 2 + willTopic!.length + 2 + options.will.payload.length : 0) +
    2 + username.length + 2 + password.length;
  const { buffer, offset: start } = packet(0x10, bodyLength);
  let offset = writeString(buffer, start, PROTOCOL_NAME);
  buffer[offset++] = 4;
  buffer[offset++] = flags;
  buffer.writeUInt16BE(options.keepAliveS, offset);
  offset = writeString(buffer, offset + 2, clientId);
  if (options.will) {
    offset = writeString(buffer, offset, willTopic!);
    offset = writeString(buffer, offset, options.will.payload);
  }
  offset = writeString(buffer, offset, username);
  writeString(buffer, offset, password);
  return buffer;
}

/** MQTT-3.3: PUBLISH; `packetId` is required for QoS 1 and ignored for QoS 0. */
export function encodePublish(topic: Buffer, payload: Buffer, qos: 0 | 1, retain: boolean, packetId: number): Buffer {
  const bodyLength = 2 + topic.length + (qos > 0 ? 2 : 0) + payload.length;
  const { buffer, offset: start } = packet(0x30 | (qos << 1) | (retain ? 1 : 0), bodyLength);
  let offset = writeString(buffer, start, topic);
  if (qos > 0) {
    buffer.writeUInt16BE(packetId, offset);
    offset += 2;
  }
  payload.copy(buffer, offset);
  return buffer;
}

/** MQTT-3.4: PUBACK, sent for a QoS 1 PUBLISH from the broker. */
export function encodePuback(packetId: number): Buffer {
  return Buffer.from([0x40, 2, packetId >> 8, packetId & 0xff]);
}

/** MQTT-3.8: SUBSCRIBE to one filter (the fixed header's flags must be 0b0010). */
export function encodeSubscribe(filter: string, qos: 0 | 1, packetId: number): Buffer {
  const topic = Buffer.from(filter);
  const { buffer, offset: start } = packet(0x82, 2 + 2 + topic.length + 1);
  buffer.writeUInt16BE(packetId, start);
  const offset = writeString(buffer, start + 2, topic);
  buffer[offset] = qos;
  return buffer;
}

export const PINGREQ = Buffer.from([0xc0, 0]);
export const DISCONNECT = Buffer.from([0xe0, 0]);

/**
 * Splits a byte stream into packets. Chunks usually hold whole packets (the
 * broker's are a few bytes), so the common path slices without copying; a
 * packet cut across chunks is kept until the rest arrives.
 */
export class PacketReader {
  private pending: Buffer | undefined;

  /** Calls `onPacket` for every complete packet; false when the stream is malformed. */
  push(chunk: Buffer, onPacket: (packet: InboundPacket) => void): boolean {
    let data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let offset = 0;
    while (offset < data.length) {
      if (data.length - offset < 2) break;
      let length = 0;
      let multiplier = 1;
      let cursor = offset + 1;
      let complete = false;
      for (let i = 0; i < 4 && cursor < data.length; i++) {
        const byte = data[cursor++]!;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
        if (i === 3) return false;
      }
      if (!complete || cursor + length > data.length) break;
      const first = data[offset]!;
      onPacket({ type: first >> 4, flags: first & 0x0f, body: data.subarray(cursor, cursor + length) });
      offset = cursor + length;
    }
    if (offset < data.length) {
      // Copy, so a kept remainder does not pin the whole chunk.
      data = Buffer.from(data.subarray(offset));
      this.pending = data;
    }
    return true;
  }
}

/** The packet id of a PUBACK or SUBACK, or of a QoS 1 PUBLISH (after its topic). */
export function readPacketId(packet: InboundPacket): number {
  if (packet.type === PACKET.publish) {
    const topicLength = packet.body.readUInt16BE(0);
    return packet.body.readUInt16BE(2 + topicLength);
  }
  return packet.body.readUInt16BE(0);
}

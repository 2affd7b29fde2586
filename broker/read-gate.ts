/**
 * A gate on what aedes reads from one socket, for backpressure.
 *
 * aedes does not stop reading while publishes of a client are still being
 * authorized: lib/client.js reads the next chunk on every 'readable' event
 * when at most one packet is pending, so a held authorizePublish callback
 * alone does not slow a publisher down. Its own client.pause()/resume()
 * loses the read credits of packets completed while paused, which can stall
 * a connection for good. The gate therefore sits one level lower: while it
 * is shut, aedes' `conn.read()` returns null, the bytes stay in the socket,
 * and once the socket buffer is full Node stops reading from TCP, so the
 * device's own sends block. Opening the gate emits 'readable', which is
 * what makes aedes read again.
 */
import type { Socket } from 'node:net';

export interface ReadGate {
  readonly isShut: boolean;
  shut(): void;
  open(): void;
}

/**
 * Wraps `socket.read` on this one socket. Only reads that take data out
 * (`read()` / `read(null)`, as aedes does) are gated; Node's internal
 * `read(0)`, which only refills the buffer, passes.
 */
export function gateReads(socket: Socket): ReadGate {
  const read = socket.read;
  let shut = false;
  socket.read = function gatedRead(this: Socket, size?: number) {
    if (shut && size !== 0) return null;
    return read.call(this, size);
  };
  return {
    get isShut() {
      return shut;
    },
    shut() {
      shut = true;
    },
    open() {
      if (!shut) return;
      shut = false;
      if (!socket.destroyed) socket.emit('readable');
    },
  };
}

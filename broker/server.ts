/**
 * The TCP listener. Hands each socket to `onConnection` and remembers open
 * sockets, so closing does not wait for a client that never sent CONNECT
 * (aedes only knows clients once they have connected).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { BrokerError } from './errors.ts';

export interface TcpListener {
  readonly host: string;
  readonly port: number;
  /** Stops accepting new connections; open ones stay. */
  stopAccepting(): void;
  /** Stops accepting, destroys open sockets, resolves when the server has closed. */
  close(): Promise<void>;
}

export async function listenTcp(
  host: string,
  port: number,
  onConnection: (socket: Socket) => void,
): Promise<TcpListener> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    onConnection(socket);
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void =>
      reject(new BrokerError('listen-failed', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });

  const address = server.address();
  if (address === null || typeof address === 'string') {
    throw new BrokerError('listen-failed', `unexpected server address ${String(address)}`);
  }

  let closed: Promise<void> | undefined;
  // server.close() calls back once the last open socket has closed.
  const stopAccepting = (): Promise<void> => (closed ??= new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    host: address.address,
    port: address.port,
    stopAccepting(): void {
      void stopAccepting();
    },
    close(): Promise<void> {
      const serverClosed = stopAccepting();
      for (const socket of sockets) socket.destroy();
      return serverClosed;
    },
  };
}

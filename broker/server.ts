/**
 * The listeners, TCP and TLS. Each hands every socket to `onConnection`
 * (a TLS one once its handshake is done) and remembers open sockets, so
 * closing does not wait for a client that never sent CONNECT, or never
 * finished its handshake (aedes only knows clients once they have connected).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { BrokerError } from './errors.ts';

export interface TcpListener {
  readonly host: string;
  readonly port: number;
  /** Stops accepting new connections; open ones stay. */
  stopAccepting(): void;
  /** Stops accepting, destroys open sockets, resolves when the server has closed. */
  close(): Promise<void>;
}

export interface TlsCredentials {
  /** PEM certificate (chain). */
  cert: string | Buffer;
  /** PEM private key. */
  key: string | Buffer;
}

export function listenTcp(host: string, port: number, onConnection: (socket: Socket) => void): Promise<TcpListener> {
  return listen(createServer(onConnection), host, port);
}

/**
 * MQTT over TLS: `onConnection` gets the TLS socket once the handshake has
 * succeeded; a failed handshake (a client that does not trust the
 * certificate, or does not speak TLS) goes to `onHandshakeError`.
 */
export function listenTls(
  host: string,
  port: number,
  credentials: TlsCredentials,
  onConnection: (socket: TLSSocket) => void,
  onHandshakeError: (err: Error) => void,
): Promise<TcpListener> {
  const server = createTlsServer({ cert: credentials.cert, key: credentials.key }, onConnection);
  server.on('tlsClientError', (err) => onHandshakeError(err));
  return listen(server, host, port);
}

async function listen(server: Server, host: string, port: number): Promise<TcpListener> {
  // 'connection' is the TCP socket, also under a TLS server (where it is
  // destroyed with the TLS socket on top of it, handshake done or not).
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
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

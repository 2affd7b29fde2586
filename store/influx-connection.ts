/**
 * How the InfluxDB store reaches its server, whichever server it is:
 *
 * - With an `org`, writes go to `/api/v2/write?org=&bucket=` with
 *   `Authorization: Token <token>`: InfluxDB 2.x and 3.x (and 1.8+, and
 *   VictoriaMetrics, which ignores org and bucket).
 * - Without one, to InfluxDB 1.x's `/write?db=&rp=`: the bucket is
 *   `database` or `database/retention-policy` (1.8's own mapping of a bucket
 *   onto 1.x); a token `user:password` is sent as HTTP basic auth (1.x
 *   before 1.8 knows no other scheme), any other token as `Token <token>`.
 *   VictoriaMetrics serves this path too (it adds the label `db`).
 *
 * Reads are InfluxQL on `/query?db=<database>` (1.x natively; 2.x and 3.x
 * through a DBRP mapping of the database onto the bucket): the database is
 * the bucket's database part unless given.
 *
 * Writes use the client's WriteApi and its HTTP transport (keep-alive,
 * gzip, timeouts), the only change being the path of a 1.x write; /query and
 * /ping go through the same transport, so every request carries the same
 * credentials and timeout.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { HttpError, InfluxDB, setLogger, type Transport } from '@influxdata/influxdb-client';
import type { Logger } from 'pino';
import { StoreError, type StoreErrorCode } from './types.ts';

export interface InfluxConnectionOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:8086. */
  url: string;
  /** 2.x/3.x: an API token. 1.x: `user:password`, or empty when authentication is off. */
  token?: string;
  /** 2.x/3.x organisation; with one, writes use the v2 API (see the file comment). */
  org?: string;
  /** 2.x/3.x: the bucket. 1.x: `database` or `database/retention-policy`. */
  bucket: string;
  /** The database /query reads (`db`); by default the bucket's database part. */
  database?: string;
  /** Longest wait for a request's socket to be idle (the client's timeout). */
  timeoutMs?: number;
}

export const DEFAULT_INFLUX_TIMEOUT_MS = 10_000;

export interface InfluxConnection {
  /** Which write API: 'v2' with an org, 'v1' without. */
  readonly writeApi: 'v1' | 'v2';
  readonly org: string;
  readonly bucket: string;
  /** The `db` and, for 1.x, `rp` that /query reads. */
  readonly database: string;
  readonly retentionPolicy: string | undefined;
  /** Makes WriteApis whose writes go to the right path for `writeApi`. */
  readonly client: InfluxDB;
  /** The client's transport, for /query and /ping. */
  readonly transport: Transport;
  /** 1.x's write path (`/write?db=…`), whose empty write checks the database and credentials; undefined for the v2 API. */
  readonly v1WritePath: string | undefined;
  /** Ends idle keep-alive sockets; requests after it open new ones. */
  close(): void;
}

/** Splits a 1.x bucket `database/retention-policy` (the policy may itself contain '/'s). */
export function splitBucket(bucket: string): { database: string; retentionPolicy: string | undefined } {
  const slash = bucket.indexOf('/');
  if (slash < 0) return { database: bucket, retentionPolicy: undefined };
  const retentionPolicy = bucket.slice(slash + 1);
  return { database: bucket.slice(0, slash), retentionPolicy: retentionPolicy === '' ? undefined : retentionPolicy };
}

/** The client's transport with writes sent to 1.x's /write instead of /api/v2/write. */
function withV1WritePath(inner: Transport, writePath: string): Transport {
  const map = (path: string) => (path.startsWith('/api/v2/write?') ? writePath : path);
  return {
    chunkCombiner: inner.chunkCombiner,
    send: (path, body, options, callbacks) => inner.send(map(path), body, options, callbacks),
    request: (path, body, options, responseStarted) => inner.request(map(path), body, options, responseStarted),
    iterate: (path, body, options) => inner.iterate(map(path), body, options),
  };
}

export function connectInflux(options: InfluxConnectionOptions): InfluxConnection {
  const url = options.url.replace(/\/+$/, '');
  const org = options.org ?? '';
  const writeApi = org === '' ? 'v1' : 'v2';
  const { database: bucketDatabase, retentionPolicy } = splitBucket(options.bucket);
  const token = options.token ?? '';
  const basic = writeApi === 'v1' && token.includes(':');
  const agent = url.startsWith('https:') ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  const base = new InfluxDB({
    url,
    ...(token !== '' && !basic ? { token } : {}),
    ...(basic ? { headers: { authorization: `Basic ${Buffer.from(token).toString('base64')}` } } : {}),
    timeout: options.timeoutMs ?? DEFAULT_INFLUX_TIMEOUT_MS,
    transportOptions: { agent },
  });
  let transport = base.transport;
  let v1WritePath: string | undefined;
  if (writeApi === 'v1') {
    const params = new URLSearchParams({ db: bucketDatabase, precision: 'ms' });
    if (retentionPolicy !== undefined) params.set('rp', retentionPolicy);
    v1WritePath = `/write?${params.toString()}`;
    transport = withV1WritePath(transport, v1WritePath);
  }
  return {
    writeApi,
    org,
    bucket: options.bucket,
    database: options.database ?? bucketDatabase,
    retentionPolicy: writeApi === 'v1' ? retentionPolicy : undefined,
    client: new InfluxDB({ url, transport }),
    transport,
    v1WritePath,
    close: () => agent.destroy(),
  };
}

/**
 * The StoreError code of a failed request:
 * - 'invalid' for what the server refuses in this request and would refuse
 *   again: 400 (a line it cannot parse, a field of the wrong type), 413
 *   (too large: isolating messages makes smaller requests), 422;
 * - 'unavailable' for everything else: no connection, a timeout, 5xx, 429,
 *   and 401, 403, 404 (wrong credentials, a missing database or bucket),
 *   which refuse every request alike, so isolating messages would only
 *   dead-letter the whole fleet's data.
 */
export function codeOfFailure(error: unknown): StoreErrorCode {
  if (error instanceof HttpError && (error.statusCode === 400 || error.statusCode === 413 || error.statusCode === 422)) return 'invalid';
  return 'unavailable';
}

/** What the server said, kept short: the status and its error text. */
function describeFailure(error: unknown): string {
  if (error instanceof HttpError) {
    const json = error.json as { error?: unknown; message?: unknown } | undefined;
    const said = typeof json?.error === 'string' ? json.error : typeof json?.message === 'string' ? json.message : (error.body ?? error.statusMessage ?? '');
    return `HTTP ${error.statusCode}${said ? `: ${said.slice(0, 500)}` : ''}`;
  }
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

/** A failed request as a StoreError with the code above, the request's purpose and the server's words. */
export function toInfluxStoreError(action: string, error: unknown): StoreError {
  if (error instanceof StoreError) return error;
  return new StoreError(codeOfFailure(error), `${action} failed: ${describeFailure(error)}`, { cause: error });
}

/**
 * Sends the client's own log lines (a warning per failed write attempt, an
 * error when it gives a request up) to `logger` at debug: the store reports
 * every failure that matters as a StoreError, which its caller logs, so at
 * a higher level each failure would be logged twice. The client's logger is
 * one per process (a module-level setting of the library), so the process
 * wiring calls this once.
 */
export function logInfluxClientTo(logger: Logger): void {
  setLogger({
    error: (message, error) => logger.debug({ err: error }, `influxdb-client: ${message}`),
    warn: (message, error) => logger.debug({ err: error }, `influxdb-client: ${message}`),
  });
}

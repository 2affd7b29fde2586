/**
 * Writes that resolve only once the server confirmed them.
 *
 * The client's WriteApi buffers lines, sends them in requests of
 * `linesPerRequest` (gzipped above `gzipThreshold` bytes), and retries a
 * failed request with exponential backoff and jitter from a retry buffer
 * bounded to `maxBufferLines`. Its `flush()` promise, though, rejects at the
 * first failed attempt while the retries go on in the background, and a line
 * dropped from a full retry buffer is only reported to a callback. So each
 * call of `write` gets a WriteApi of its own and settles from the client's
 * callbacks:
 *
 * - resolves when `writeSuccess` has confirmed every line (a 204 from the
 *   server for each request);
 * - rejects when a request fails for good: a status the client does not
 *   retry (400, 401, 404, 413, …), its last retry, its retry time spent, or
 *   its lines dropped from the retry buffer. The WriteApi is then disposed,
 *   so nothing of the call is retried behind the caller's back: the caller
 *   (ingest's batch writer) decides what happens next.
 *
 * A call's lines are sent in slices of at most `maxBufferLines`, one after
 * the other, so the retry buffer can always hold a whole slice. Lines of a
 * rejected call may have been stored in part (another request of the call
 * succeeded, or the server stored a request whose answer was lost).
 */
import { HttpError, type WriteApi, type WriteOptions } from '@influxdata/influxdb-client';
import { toInfluxStoreError, type InfluxConnection } from './influx-connection.ts';
import { StoreError } from './types.ts';

export interface InfluxWriteSettings {
  /** Lines per HTTP request (InfluxDB suggests 5 000). */
  linesPerRequest: number;
  /** Bodies larger than this many bytes are gzipped. */
  gzipThreshold: number;
  /** Lines the client keeps for retrying; a call writes slices of at most this many. */
  maxBufferLines: number;
  /** Retries of a failed request after its first attempt. */
  maxRetries: number;
  /** First retry delay; it doubles (with jitter) up to maxRetryDelayMs. */
  minRetryDelayMs: number;
  maxRetryDelayMs: number;
  /** A request is given up this long after its first attempt, retries left or not. */
  maxRetryTimeMs: number;
}

/**
 * A blip is absorbed within a few seconds; a longer outage surfaces as
 * 'unavailable' after about 15 s, so ingest's writer applies backpressure
 * and health shows it, rather than the store hiding it.
 */
export const DEFAULT_INFLUX_WRITE_SETTINGS: Readonly<InfluxWriteSettings> = {
  linesPerRequest: 5_000,
  gzipThreshold: 1_000,
  maxBufferLines: 50_000,
  maxRetries: 3,
  minRetryDelayMs: 200,
  maxRetryDelayMs: 5_000,
  maxRetryTimeMs: 15_000,
};

/** The client's retry decision (WriteApiImpl): a status below 429 is not retried, every other failure is. */
function retriedByClient(error: Error): boolean {
  return !(error instanceof HttpError) || error.statusCode >= 429;
}

export class ConfirmedWriter {
  /** Calls in flight and how to end each, so close() never leaves one pending. */
  private readonly inFlight = new Map<WriteApi, (error: StoreError) => void>();
  private closed = false;

  constructor(
    private readonly connection: InfluxConnection,
    private readonly settings: Readonly<InfluxWriteSettings>,
  ) {}

  /** Resolves once the server confirmed every line; rejects with a StoreError (see the file comment). */
  async write(lines: readonly string[], action: string): Promise<void> {
    for (let i = 0; i < lines.length; i += this.settings.maxBufferLines) {
      await this.writeSlice(lines.slice(i, i + this.settings.maxBufferLines), action);
    }
  }

  /** Ends every call in flight with 'unavailable' and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const fail of [...this.inFlight.values()]) fail(new StoreError('unavailable', 'the InfluxDB store was closed during the write'));
  }

  private writeSlice(lines: readonly string[], action: string): Promise<void> {
    if (this.closed) return Promise.reject(new StoreError('unavailable', `${action}: the InfluxDB store is closed`));
    const { settings } = this;
    return new Promise<void>((resolve, reject) => {
      let confirmed = 0;
      let settled = false;
      const settle = (error?: StoreError) => {
        if (settled) return;
        settled = true;
        this.inFlight.delete(api);
        // Stops retries still scheduled for this call's other requests.
        api.dispose();
        if (error) reject(error);
        else resolve();
      };
      const options: Partial<WriteOptions> = {
        batchSize: settings.linesPerRequest,
        maxBatchBytes: 10_000_000,
        // Only this call's flush sends: no timer.
        flushInterval: 0,
        gzipThreshold: settings.gzipThreshold,
        maxBufferLines: settings.maxBufferLines,
        maxRetries: settings.maxRetries,
        minRetryDelay: settings.minRetryDelayMs,
        maxRetryDelay: settings.maxRetryDelayMs,
        maxRetryTime: settings.maxRetryTimeMs,
        exponentialBase: 2,
        randomRetry: true,
        retryJitter: Math.min(200, settings.minRetryDelayMs),
        writeSuccess: (sent) => {
          confirmed += sent.length;
          if (confirmed >= lines.length) settle();
        },
        writeFailed: (error, _sent, attempt, expires) => {
          const hintedHandoff = error instanceof HttpError && typeof error.json?.error === 'string' && error.json.error.includes('hinted handoff queue not empty');
          // Left undefined, the client goes on as it decides: a retry, or the end of this request.
          if (!hintedHandoff && (!retriedByClient(error) || attempt > settings.maxRetries || Date.now() >= expires)) {
            settle(toInfluxStoreError(action, error));
          }
        },
        writeRetrySkipped: () => settle(new StoreError('unavailable', `${action} failed: lines were dropped from the client's full retry buffer`)),
      };
      const api = this.connection.client.getWriteApi(this.connection.org, this.connection.bucket, 'ms', options);
      this.inFlight.set(api, settle);
      api.writeRecords([...lines]);
      // The outcome comes through the callbacks above; this promise rejects at a first failed attempt.
      api.flush().catch(() => undefined);
    });
  }
}

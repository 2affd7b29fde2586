/**
 * InfluxQL reads on `/query` (InfluxDB 1.x's endpoint, also served by 2.x
 * and 3.x through a DBRP mapping), through the client's transport. The
 * client's QueryApi speaks Flux, which 1.x does not have.
 *
 * Answers are asked for in chunks (`chunked=true`): the server streams one
 * JSON object per line, a series split over several of them, and no
 * `max-row-limit` cuts the answer short. Times come as integer milliseconds
 * (`epoch=ms`).
 */
import type { Transport } from '@influxdata/influxdb-client';
import { MAX_TIME_MS, MIN_TIME_MS } from './influx-schema.ts';
import { toInfluxStoreError } from './influx-connection.ts';
import { StoreError } from './types.ts';

/** One series of an answer: its measurement, the tags it was grouped by, its rows. */
export interface InfluxSeries {
  name: string;
  tags: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

interface ChunkSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values?: unknown[][];
}

interface Chunk {
  error?: string;
  results?: Array<{ statement_id: number; error?: string; series?: ChunkSeries[] }>;
}

/** An identifier (measurement, field, tag key) in double quotes. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A string literal (a tag value) in single quotes. */
export function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * A time in a WHERE clause: whole milliseconds since the epoch, clamped to
 * just outside what can be stored. Rounded up, which keeps `time >= from`
 * and `time < to` exact for fractional bounds (times are whole milliseconds).
 */
export function timeLiteral(ms: number): string {
  return `${Math.min(MAX_TIME_MS + 1, Math.max(MIN_TIME_MS, Math.ceil(ms)))}ms`;
}

/** `"key" = 'a' OR "key" = 'b' …` in parentheses. */
export function anyOf(key: string, values: readonly string[]): string {
  return `(${values.map((v) => `${quoteIdentifier(key)} = ${quoteString(v)}`).join(' OR ')})`;
}

/**
 * Statement errors that say the server cannot answer anyone now (a missing
 * database or retention policy, a query killed for time): 'unavailable';
 * any other is this query's own problem: 'invalid'.
 */
function codeOfStatementError(message: string): 'unavailable' | 'invalid' {
  return /database not found|retention policy not found|timeout|timed out|killed/i.test(message) ? 'unavailable' : 'invalid';
}

export class InfluxQueryClient {
  constructor(
    private readonly transport: Transport,
    private readonly target: { database: string; retentionPolicy: string | undefined; timeoutMs: number },
  ) {}

  /**
   * Runs the statements in one request and returns the series of each, in
   * the order given. Rejects with a StoreError: 'unavailable' when the
   * server cannot be reached or answers 5xx, 429, 401, 403, 404, or a
   * statement fails for want of its database; 'invalid' for a 400 or any
   * other statement error.
   */
  async select(statements: readonly string[], action: string): Promise<InfluxSeries[][]> {
    const answers: InfluxSeries[][] = statements.map(() => []);
    if (statements.length === 0) return answers;
    const form = new URLSearchParams({ db: this.target.database, epoch: 'ms', chunked: 'true', chunk_size: '10000', q: statements.join(';\n') });
    if (this.target.retentionPolicy !== undefined) form.set('rp', this.target.retentionPolicy);
    const decoder = new TextDecoder();
    let pending = '';
    /** A series split over chunks comes again with the same name and tags: it continues the last one of its statement. */
    const last = new Map<number, InfluxSeries>();
    const take = (line: string) => {
      if (line.trim() === '') return;
      const chunk = JSON.parse(line) as Chunk;
      if (chunk.error !== undefined) throw new StoreError(codeOfStatementError(chunk.error), `${action} failed: ${chunk.error}`);
      for (const result of chunk.results ?? []) {
        if (result.error !== undefined) throw new StoreError(codeOfStatementError(result.error), `${action} failed: ${result.error}`);
        const answer = answers[result.statement_id];
        if (answer === undefined) continue;
        for (const s of result.series ?? []) {
          const previous = last.get(result.statement_id);
          const tags = s.tags ?? {};
          if (previous !== undefined && previous.name === s.name && sameTags(previous.tags, tags)) {
            previous.values.push(...(s.values ?? []));
          } else {
            const series: InfluxSeries = { name: s.name, tags, columns: s.columns, values: s.values ?? [] };
            answer.push(series);
            last.set(result.statement_id, series);
          }
        }
      }
    };
    try {
      const body = this.transport.iterate('/query', form.toString(), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', 'accept-encoding': 'gzip' },
        signal: AbortSignal.timeout(this.target.timeoutMs),
      });
      for await (const bytes of body) {
        pending += decoder.decode(bytes, { stream: true });
        let newline = pending.indexOf('\n');
        while (newline >= 0) {
          take(pending.slice(0, newline));
          pending = pending.slice(newline + 1);
          newline = pending.indexOf('\n');
        }
      }
      take(pending + decoder.decode());
    } catch (error) {
      throw toInfluxStoreError(action, error);
    }
    return answers;
  }

  /** Resolves when the server answers /ping. */
  async ping(action: string): Promise<void> {
    try {
      await this.transport.request('/ping', '', { method: 'GET', signal: AbortSignal.timeout(this.target.timeoutMs) });
    } catch (error) {
      throw toInfluxStoreError(action, error);
    }
  }
}

function sameTags(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/** The index of each column by name. */
export function columnIndex(series: InfluxSeries): Map<string, number> {
  return new Map(series.columns.map((name, i) => [name, i]));
}

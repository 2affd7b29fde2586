/**
 * Real time-series servers for tests, from the Debian packages that
 * scripts/install-deps.sh installs: InfluxDB 1.x (`influxd`, package
 * `influxdb`) and VictoriaMetrics (`victoria-metrics`). Each is started on
 * free loopback ports with its data in a temporary folder (InfluxDB with a
 * configuration file written there: reporting off, monitoring off, both
 * listeners on 127.0.0.1), and `stop()` ends the process and removes the
 * folder. A missing binary is an error naming the install script: a test
 * never skips silently.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './processes.ts';

const START_TIMEOUT_MS = 30_000;

/** The path of an installed binary; throws, saying how to install it, when it is missing. */
export function findBinary(name: string, debianPackage: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin', '/usr/sbin'].filter((d) => d !== '');
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // next
    }
  }
  throw new Error(`${name} is not installed: run ./scripts/install-deps.sh (it installs the Debian package ${debianPackage})`);
}

interface ServerProcess {
  child: ChildProcess;
  output(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

function startProcess(binary: string, args: readonly string[], dir: string): ServerProcess {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  let output = '';
  const keep = (chunk: Buffer) => {
    // The last few kilobytes are enough to tell why a start failed.
    output = (output + chunk.toString('utf8')).slice(-8_192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  return {
    child,
    output: () => output,
    exited: () => exited,
    async stop() {
      if (!exited) child.kill('SIGTERM');
      const killTimer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(killTimer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `ready` until it is true; fails with the server's output when it exits or takes too long. */
async function waitUntilReady(name: string, server: ServerProcess, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (server.exited()) throw new Error(`${name} exited at start:\n${server.output()}`);
    try {
      if (await ready()) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${name} not ready within ${START_TIMEOUT_MS / 1000} s:\n${server.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface RunningInfluxd {
  /** Base URL of its HTTP API (/write, /query, /ping). */
  url: string;
  /** Its process id (for CPU figures). */
  pid: number;
  /** As `/ping` reports it (X-Influxdb-Version), e.g. 1.6.7~rc0. */
  version: string;
  /** Runs InfluxQL that changes something (CREATE, DROP) and fails on any error. */
  command(q: string): Promise<void>;
  /** Creates a database and returns its name (a fresh one per call unless named). */
  createDatabase(name?: string): Promise<string>;
  stop(): Promise<void>;
}

/** The configuration of a test influxd; see `influxd config` for every key. */
function influxdConfig(dir: string, httpPort: number, rpcPort: number): string {
  return [
    'reporting-enabled = false',
    `bind-address = "127.0.0.1:${rpcPort}"`,
    '[meta]',
    `  dir = "${join(dir, 'meta')}"`,
    '  logging-enabled = false',
    '[data]',
    `  dir = "${join(dir, 'data')}"`,
    `  wal-dir = "${join(dir, 'wal')}"`,
    '  query-log-enabled = false',
    '[monitor]',
    '  store-enabled = false',
    '[http]',
    `  bind-address = "127.0.0.1:${httpPort}"`,
    '  log-enabled = false',
    '  pprof-enabled = false',
    '[logging]',
    '  level = "warn"',
    '  suppress-logo = true',
    '[continuous_queries]',
    '  enabled = false',
    '',
  ].join('\n');
}

/**
 * A port found free may be taken by someone else before the server binds
 * it: a start that failed for that is tried again, on other ports.
 */
async function withPortRetries<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (error) {
      if (attempt >= 3 || !/address already in use/i.test(String(error))) throw error;
    }
  }
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

export function startInfluxd(): Promise<RunningInfluxd> {
  return withPortRetries(startInfluxdOnce);
}

async function startInfluxdOnce(): Promise<RunningInfluxd> {
  const binary = findBinary('influxd', 'influxdb');
  const dir = mkdtempSync(join(tmpdir(), 'vpp-influxd-'));
  const [httpPort, rpcPort] = (await distinctFreePorts(2)) as [number, number];
  const configFile = join(dir, 'influxdb.conf');
  writeFileSync(configFile, influxdConfig(dir, httpPort, rpcPort));
  const server = startProcess(binary, ['run', '-config', configFile], dir);
  const url = `http://127.0.0.1:${httpPort}`;
  let version = 'unknown';
  try {
    await waitUntilReady('influxd', server, async () => {
      const response = await fetch(`${url}/ping`);
      version = response.headers.get('x-influxdb-version') ?? version;
      return response.status === 204;
    });
  } catch (error) {
    await server.stop();
    throw error;
  }
  const command = async (q: string): Promise<void> => {
    const response = await fetch(`${url}/query`, { method: 'POST', body: new URLSearchParams({ q }) });
    const body = (await response.json()) as { error?: string; results?: Array<{ error?: string }> };
    const error = body.error ?? body.results?.find((r) => r.error !== undefined)?.error;
    if (!response.ok || error !== undefined) throw new Error(`influxd refused ${q}: ${error ?? response.status}`);
  };
  let databases = 0;
  return {
    url,
    pid: server.child.pid!,
    version,
    command,
    async createDatabase(name = `vpp_test_${process.pid}_${++databases}`) {
      await command(`CREATE DATABASE "${name}"`);
      return name;
    },
    stop: () => server.stop(),
  };
}

export interface RunningVictoriaMetrics {
  url: string;
  /** Its process id (for CPU figures). */
  pid: number;
  /** Makes what was written so far searchable at once (otherwise after up to 30 s). */
  flush(): Promise<void>;
  /**
   * Every sample of the series matching a selector, through /api/v1/export
   * after a flush: one entry per series, its labels and its samples.
   */
  exportSeries(selector: string, startMs?: number): Promise<Array<{ metric: Record<string, string>; values: number[]; timestamps: number[] }>>;
  stop(): Promise<void>;
}

export function startVictoriaMetrics(): Promise<RunningVictoriaMetrics> {
  return withPortRetries(startVictoriaMetricsOnce);
}

async function startVictoriaMetricsOnce(): Promise<RunningVictoriaMetrics> {
  const binary = findBinary('victoria-metrics', 'victoria-metrics');
  const dir = mkdtempSync(join(tmpdir(), 'vpp-victoria-metrics-'));
  const port = await freePort();
  const server = startProcess(
    binary,
    [`-httpListenAddr=127.0.0.1:${port}`, `-storageDataPath=${join(dir, 'data')}`, '-loggerLevel=ERROR', '-retentionPeriod=100y'],
    dir,
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntilReady('victoria-metrics', server, async () => (await fetch(`${url}/health`)).ok);
  } catch (error) {
    await server.stop();
    throw error;
  }
  const flush = async (): Promise<void> => {
    const response = await fetch(`${url}/internal/force_flush`);
    if (!response.ok) throw new Error(`force_flush answered ${response.status}`);
  };
  return {
    url,
    pid: server.child.pid!,
    flush,
    async exportSeries(selector, startMs = 0) {
      await flush();
      const params = new URLSearchParams({ 'match[]': selector, start: String(Math.floor(startMs / 1000)) });
      const response = await fetch(`${url}/api/v1/export?${params.toString()}`);
      if (!response.ok) throw new Error(`export answered ${response.status}: ${await response.text()}`);
      const text = await response.text();
      return text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as { metric: Record<string, string>; values: number[]; timestamps: number[] });
    },
    stop: () => server.stop(),
  };
}

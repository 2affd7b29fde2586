/**
 * Parent side of the load generator (publisher.ts) and the bare subscriber
 * (publisher-sink.ts): forks each as its own Node process through tsx and
 * turns their IPC reports into promises. Every wait is bounded.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PublisherCommand, PublisherReport, PublisherStats } from './publisher.ts';
import type { SinkCommand, SinkReport, SinkWindow } from './publisher-sink.ts';

interface Child<C, R extends { kind: string }> {
  readonly process: ChildProcess;
  send(command: C): void;
  /** The next report of this kind, or a rejection after `timeoutMs` or when the child exits. */
  next<K extends R['kind']>(kind: K, timeoutMs: number): Promise<Extract<R, { kind: K }>>;
  onReport(listener: (report: R) => void): void;
  /** Asks politely (`close`), then kills after `graceMs`. */
  stop(closeCommand: C, graceMs?: number): Promise<void>;
}

function forkChild<C, R extends { kind: string }>(file: string, name: string, execArgv: string[]): Child<C, R> {
  const child = fork(fileURLToPath(new URL(file, import.meta.url)), [], {
    execArgv: ['--import', 'tsx', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const listeners = new Set<(report: R) => void>();
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  child.on('message', (report: R) => {
    for (const listener of [...listeners]) listener(report);
  });
  return {
    process: child,
    send(command) {
      if (!exited && child.connected) child.send(command as object);
    },
    next(kind, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`${name}: no '${kind}' report within ${timeoutMs} ms`)), timeoutMs);
        const onExit = () => done(new Error(`${name} exited while waiting for '${kind}'`));
        const listener = (report: R): void => {
          if (report.kind === 'error') done(new Error(`${name}: ${(report as unknown as { message: string }).message}`));
          else if (report.kind === kind) done(undefined, report as Extract<R, { kind: typeof kind }>);
        };
        function done(error: Error | undefined, report?: Extract<R, { kind: typeof kind }>): void {
          clearTimeout(timer);
          listeners.delete(listener);
          child.off('exit', onExit);
          if (error) reject(error);
          else resolve(report!);
        }
        listeners.add(listener);
        child.once('exit', onExit);
        if (exited) onExit();
      });
    },
    onReport(listener) {
      listeners.add(listener);
    },
    async stop(closeCommand, graceMs = 5_000) {
      if (exited) return;
      this.send(closeCommand);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

export interface PublisherProcess {
  readonly pid: number;
  connect(command: Omit<Extract<PublisherCommand, { kind: 'connect' }>, 'kind'>, timeoutMs?: number): Promise<Extract<PublisherReport, { kind: 'connected' }>>;
  run(command: Omit<Extract<PublisherCommand, { kind: 'run' }>, 'kind'>): void;
  /** Changes the rate of a fixed-rate run. */
  setRate(ratePerSec: number): void;
  pause(drainTimeoutMs?: number): Promise<{ stats: PublisherStats; drained: boolean }>;
  /** The latest stats, sent every 250 ms (undefined before the first). */
  latest(): PublisherStats | undefined;
  stop(): Promise<void>;
}

/** `execArgv` goes to the child's node, e.g. `['--cpu-prof', '--cpu-prof-dir=…']`. */
export function startPublisherProcess(execArgv: string[] = []): PublisherProcess {
  const child = forkChild<PublisherCommand, PublisherReport>('./publisher.ts', 'load generator', execArgv);
  let latest: PublisherStats | undefined;
  child.onReport((report) => {
    if (report.kind === 'stats' || report.kind === 'paused') latest = report.stats;
  });
  return {
    pid: child.process.pid ?? 0,
    async connect(command, timeoutMs = 120_000) {
      const connected = child.next('connected', timeoutMs);
      child.send({ kind: 'connect', ...command });
      return connected;
    },
    run(command) {
      child.send({ kind: 'run', ...command });
    },
    setRate(ratePerSec) {
      child.send({ kind: 'rate', ratePerSec });
    },
    async pause(drainTimeoutMs = 10_000) {
      const paused = child.next('paused', drainTimeoutMs + 5_000);
      child.send({ kind: 'pause', drainTimeoutMs });
      const report = await paused;
      return { stats: report.stats, drained: report.drained };
    },
    latest: () => latest,
    stop: () => child.stop({ kind: 'close' }),
  };
}

export interface SinkProcess {
  readonly pid: number;
  connect(command: Omit<Extract<SinkCommand, { kind: 'connect' }>, 'kind'>): Promise<void>;
  /** Starts the measured window. */
  reset(): Promise<number>;
  snapshot(): Promise<SinkWindow>;
  /** Messages received in total, as of the latest stats (every 250 ms). */
  latest(): { received: number; atMs: number; cpuMs: number } | undefined;
  stop(): Promise<void>;
}

export function startSinkProcess(execArgv: string[] = []): SinkProcess {
  const child = forkChild<SinkCommand, SinkReport>('./publisher-sink.ts', 'bare subscriber', execArgv);
  let latest: { received: number; atMs: number; cpuMs: number } | undefined;
  child.onReport((report) => {
    if (report.kind === 'stats') latest = { received: report.received, atMs: report.atMs, cpuMs: report.cpuMs };
  });
  return {
    pid: child.process.pid ?? 0,
    async connect(command) {
      const connected = child.next('connected', 30_000);
      child.send({ kind: 'connect', ...command });
      await connected;
    },
    async reset() {
      const reset = child.next('reset', 10_000);
      child.send({ kind: 'reset' });
      return (await reset).atMs;
    },
    async snapshot() {
      const snapshot = child.next('snapshot', 10_000);
      child.send({ kind: 'snapshot' });
      return (await snapshot).window;
    },
    latest: () => latest,
    stop: () => child.stop({ kind: 'close' }),
  };
}

import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimError } from './errors.ts';
import { MAX_FAULT_FILE_READ_BYTES, appendFaultCommand, parseFaultCommand, watchFaultFile } from './fault-file.ts';
import type { FaultKind, FaultSpec } from './faults.ts';

const WAIT_MS = 10_000;
const POLL_MS = 5;

let dir: string;
let file: string;
let watchers: Array<{ stop(): void }>;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fault-file-'));
  file = join(dir, 'faults.log');
  watchers = [];
});

afterEach(() => {
  for (const watcher of watchers) watcher.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A fleet that records what it is asked to do, and refuses targets starting with `bad`. */
class RecordingFleet {
  readonly calls: string[] = [];
  /** Number of calls made in each turn of the event loop, i.e. per poll. */
  readonly callsPerTurn: number[] = [];
  private turnOpen = false;
  private waiters: Array<() => void> = [];

  injectFault(spec: FaultSpec | string): void {
    const text = typeof spec === 'string' ? spec : `${spec.kind}:${spec.target}${spec.startSeconds === undefined ? '' : `@${spec.startSeconds}`}`;
    if (text.includes(':bad')) throw new SimError('unknown-device', `no simulated device in ${text}`);
    this.record(`add ${text}`);
  }

  clearFault(kind: FaultKind, target: string): boolean {
    this.record(`clear ${kind}:${target}`);
    return target !== 'never-added';
  }

  /** Resolves once `count` calls were made; rejects after WAIT_MS. */
  waitForCalls(count: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${count} calls, got ${this.calls.length}: ${this.calls.slice(-5).join(' | ')}`)), WAIT_MS);
      const check = (): void => {
        if (this.calls.length < count) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve();
      };
      this.waiters.push(check);
      check();
    });
  }

  private record(call: string): void {
    this.calls.push(call);
    if (!this.turnOpen) {
      this.turnOpen = true;
      this.callsPerTurn.push(0);
      setImmediate(() => {
        this.turnOpen = false;
      });
    }
    this.callsPerTurn[this.callsPerTurn.length - 1]! += 1;
    for (const wake of [...this.waiters]) wake();
  }
}

/** Polls a condition no call signals (a log line) every few milliseconds; rejects after WAIT_MS. */
async function waitUntil(description: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${description}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function capture() {
  const records: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => records.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, records, warnings: () => records.filter((r) => r.level === 40) };
}

function watch(fleet: RecordingFleet, logger = capture().logger): void {
  watchers.push(watchFaultFile({ file, fleet, logger, pollMs: POLL_MS }));
}

describe('parseFaultCommand', () => {
  it('reads add and clear lines, and skips blanks and comments', () => {
    expect(parseFaultCommand('add overheat:site-0001@30-90')).toEqual({
      ok: true,
      value: { action: 'add', spec: { kind: 'overheat', target: 'site-0001', startSeconds: 30, endSeconds: 90 } },
    });
    expect(parseFaultCommand('  clear   silent:site-0001-meter \r')).toEqual({ ok: true, value: { action: 'clear', kind: 'silent', target: 'site-0001-meter' } });
    expect(parseFaultCommand('')).toEqual({ ok: true, value: null });
    expect(parseFaultCommand('   # add silent:x')).toEqual({ ok: true, value: null });
  });

  it('names what is wrong with a bad line', () => {
    expect(parseFaultCommand('remove silent:x')).toMatchObject({ ok: false, problems: [expect.stringMatching(/unknown command "remove"/)] });
    expect(parseFaultCommand('add')).toEqual({ ok: false, problems: ['add needs a spec'] });
    expect(parseFaultCommand('clear silent:x@5')).toMatchObject({ ok: false, problems: [expect.stringMatching(/without a time/)] });
    expect(parseFaultCommand('add melt:a b')).toMatchObject({ ok: false, problems: [expect.stringMatching(/unknown kind/), expect.stringMatching(/bad target/)] });
    expect(parseFaultCommand(`add silent:${'x'.repeat(300)}`)).toMatchObject({ ok: false, problems: [expect.stringMatching(/longer than/)] });
  });
});

describe('appendFaultCommand', () => {
  it('creates the file owner-only, appends validated lines, and never glues a command to a partial line', async () => {
    await appendFaultCommand(file, 'add silent:site-0001');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    appendFileSync(file, 'add frozen:partial');
    await appendFaultCommand(file, '  clear silent:site-0001  ');
    expect(readFileSync(file, 'utf8')).toBe('add silent:site-0001\nadd frozen:partial\nclear silent:site-0001\n');
    await expect(appendFaultCommand(file, 'add melt:x')).rejects.toMatchObject({ code: 'invalid-options', message: expect.stringMatching(/unknown kind/) });
    await expect(appendFaultCommand(file, '# note')).rejects.toMatchObject({ code: 'invalid-options' });
    await expect(appendFaultCommand(file, 'add silent:a\nadd silent:b')).rejects.toBeInstanceOf(SimError);
  });
});

describe('watchFaultFile', () => {
  it('creates a missing file owner-only, and runs only the lines appended after it started, in order', async () => {
    const fleet = new RecordingFleet();
    watch(fleet);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    appendFileSync(file, 'add silent:site-0001\n\n# a comment\nadd frozen:site-0002@5\nclear silent:site-0001\n');
    await fleet.waitForCalls(3);
    expect(fleet.calls).toEqual(['add silent:site-0001', 'add frozen:site-0002@5', 'clear silent:site-0001']);
  });

  it('ignores what the file held before it started', async () => {
    writeFileSync(file, 'add silent:old-1\nadd silent:old-2\nadd silent:old-partial');
    const fleet = new RecordingFleet();
    const log = capture();
    watch(fleet, log.logger);
    // The old partial line is completed: it began before the watcher, so its end is not run either.
    appendFileSync(file, 'xyz\nadd overheat:new\n');
    await fleet.waitForCalls(1);
    expect(fleet.calls).toEqual(['add overheat:new']);
    expect(log.warnings()).toEqual([]);
  });

  it('logs a bad line or a refused command and carries on with the next', async () => {
    const fleet = new RecordingFleet();
    const log = capture();
    watch(fleet, log.logger);
    appendFileSync(file, 'remove silent:x\nadd silent:bad-device\nclear frozen:never-added\nadd silent:good\n');
    await fleet.waitForCalls(2);
    expect(fleet.calls).toEqual(['clear frozen:never-added', 'add silent:good']);
    const warnings = log.warnings().map((r) => r.msg);
    expect(warnings).toEqual(['bad fault command skipped', 'fault command refused', 'no such fault to clear']);
    expect(log.warnings()[0]!.line).toBe('"remove silent:x"');
  });

  it('keeps a partial last line until its newline arrives', async () => {
    const fleet = new RecordingFleet();
    watch(fleet);
    appendFileSync(file, 'add silent:first\nadd silent:site-0001-me');
    await fleet.waitForCalls(1);
    appendFileSync(file, 'ter\r\n');
    await fleet.waitForCalls(2);
    expect(fleet.calls).toEqual(['add silent:first', 'add silent:site-0001-meter']);
  });

  it('reads again from the start when the file shrinks', async () => {
    writeFileSync(file, `# ${'x'.repeat(200)}\n`);
    const fleet = new RecordingFleet();
    watch(fleet);
    appendFileSync(file, 'add silent:before\n');
    await fleet.waitForCalls(1);
    truncateSync(file, 0);
    appendFileSync(file, 'add silent:after\n');
    await fleet.waitForCalls(2);
    expect(fleet.calls).toEqual(['add silent:before', 'add silent:after']);
  });

  it('reads a large backlog in bounded polls, in order, and skips an endless line', async () => {
    const fleet = new RecordingFleet();
    const log = capture();
    watch(fleet, log.logger);
    const count = 6_000;
    const lines = Array.from({ length: count }, (_, i) => `add silent:device-${String(i).padStart(5, '0')}\n`);
    const lineBytes = lines[0]!.length;
    // A line still growing past any valid length is dropped without waiting for its end.
    appendFileSync(file, `add silent:${'x'.repeat(5_000)}`);
    await waitUntil('the long line skipped', () => log.warnings().length > 0);
    appendFileSync(file, `${'y'.repeat(5_000)}\n${lines.join('')}`);
    await fleet.waitForCalls(count);
    expect(fleet.calls).toEqual(lines.map((line) => line.trim()));
    // One poll runs at most the lines of MAX_FAULT_FILE_READ_BYTES.
    expect(fleet.callsPerTurn.length).toBeGreaterThanOrEqual(Math.ceil((count * lineBytes) / MAX_FAULT_FILE_READ_BYTES));
    for (const calls of fleet.callsPerTurn) expect(calls).toBeLessThanOrEqual(Math.ceil(MAX_FAULT_FILE_READ_BYTES / lineBytes) + 1);
    expect(log.warnings().map((r) => r.msg)).toEqual(['fault command line too long; skipped up to its end']);
  });

  it('refuses a bad poll interval or an unusable path; stop is idempotent', () => {
    const fleet = new RecordingFleet();
    expect(() => watchFaultFile({ file, fleet, logger: capture().logger, pollMs: 0 })).toThrow(/pollMs/);
    expect(() => watchFaultFile({ file: join(dir, 'missing', 'faults.log'), fleet, logger: capture().logger })).toThrow(SimError);
    const watcher = watchFaultFile({ file, fleet, logger: capture().logger, pollMs: POLL_MS });
    watcher.stop();
    watcher.stop();
  });
});

/**
 * Run-time control of a fleet's faults through a file: an append-only
 * command log that an operator (or `appendFaultCommand`, for a CLI) adds
 * lines to while the fleet runs.
 *
 * Format, one command per line (UTF-8, `\n` or `\r\n`):
 *
 *     add <spec>              # e.g. add overheat:site-0001@30-90
 *     clear <kind>:<target>   # e.g. clear overheat:site-0001
 *
 * Blank lines and lines starting with `#` are ignored. Only lines appended
 * after the watcher started run, in order, once each: a log that survives
 * restarts does not replay yesterday's faults. Polling (size, then only the
 * new bytes) rather than fs.watch: it behaves the same on every file
 * system, including bind mounts and network shares where change events
 * are missing.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { SimError } from './errors.ts';
import {
  MAX_FAULT_SPEC_LENGTH,
  formatFaultSpec,
  parseFaultSpec,
  quote,
  type FaultKind,
  type FaultParse,
  type FaultSpec,
} from './faults.ts';
import type { Fleet } from './fleet.ts';

export type FaultCommand = { action: 'add'; spec: FaultSpec } | { action: 'clear'; kind: FaultKind; target: string };

/** Longest command line, in characters: a verb, a blank and the longest spec. */
export const MAX_FAULT_COMMAND_LENGTH = MAX_FAULT_SPEC_LENGTH + 16;
/** Most bytes one poll reads; a longer backlog is read over the next polls. */
export const MAX_FAULT_FILE_READ_BYTES = 64 * 1024;
/**
 * Longest unfinished line kept while waiting for its newline; beyond it the
 * line cannot be valid and is skipped up to its end, so a writer that never
 * ends its line cannot make the watcher hold an ever growing buffer.
 */
const MAX_PARTIAL_LINE_BYTES = 4 * MAX_FAULT_COMMAND_LENGTH;
const NEWLINE = 0x0a;
const FILE_MODE = 0o600;

/**
 * Parses one line of the command log. `null` for a blank line or a comment;
 * on failure lists every problem found.
 */
export function parseFaultCommand(line: string): FaultParse<FaultCommand | null> {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return { ok: true, value: null };
  if (text.length > MAX_FAULT_COMMAND_LENGTH) {
    return { ok: false, problems: [`command ${quote(text)} is longer than ${MAX_FAULT_COMMAND_LENGTH} characters`] };
  }
  const match = /^(\S+)(?:\s+(.*))?$/s.exec(text);
  const verb = match?.[1] ?? '';
  const argument = match?.[2] ?? '';
  if (verb !== 'add' && verb !== 'clear') {
    return { ok: false, problems: [`unknown command ${quote(verb)} in ${quote(text)} (add <spec> or clear <kind>:<target>)`] };
  }
  if (argument === '') return { ok: false, problems: [`${verb} needs ${verb === 'add' ? 'a spec' : '<kind>:<target>'}`] };
  const parsed = parseFaultSpec(argument);
  if (!parsed.ok) return parsed;
  if (verb === 'add') return { ok: true, value: { action: 'add', spec: parsed.value } };
  if (parsed.value.startSeconds !== undefined) {
    return { ok: false, problems: [`clear takes <kind>:<target> without a time, got ${quote(argument)}`] };
  }
  return { ok: true, value: { action: 'clear', kind: parsed.value.kind, target: parsed.value.target } };
}

/** The line of a command, as `parseFaultCommand` reads it. */
export function formatFaultCommand(command: FaultCommand): string {
  return command.action === 'add' ? `add ${formatFaultSpec(command.spec)}` : `clear ${command.kind}:${command.target}`;
}

/**
 * Appends one command line to the log, creating the file (mode 0600) when
 * missing. Throws SimError 'invalid-options' for a line that is not a
 * valid command (blank lines and comments included: there is nothing to
 * run). When the file's last line lacks its newline (a writer died
 * mid-line), a newline goes first, so the command is not glued to it.
 */
export async function appendFaultCommand(file: string, line: string): Promise<void> {
  const parsed = parseFaultCommand(line);
  if (!parsed.ok) throw new SimError('invalid-options', `invalid fault command: ${parsed.problems.join('; ')}`);
  if (parsed.value === null) throw new SimError('invalid-options', `not a fault command: ${quote(line)}`);
  const handle = await open(file, 'a+', FILE_MODE);
  try {
    const { size } = await handle.stat();
    let prefix = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      if (last[0] !== NEWLINE) prefix = '\n';
    }
    // One write for the line and its newline: a watcher polling meanwhile sees at worst a partial line, which it keeps until the newline.
    await handle.appendFile(`${prefix}${formatFaultCommand(parsed.value)}\n`);
  } finally {
    await handle.close();
  }
}

export interface WatchFaultFileOptions {
  file: string;
  /** The fleet the commands act on. */
  fleet: Pick<Fleet, 'injectFault' | 'clearFault'>;
  logger: Logger;
  /** How often the file's size is checked; 1000 ms when absent. */
  pollMs?: number;
}

/**
 * Starts running the commands appended to `file` from now on. Creates the
 * file (mode 0600) when missing and remembers its size before returning, so
 * every line appended after this call returns runs, and none written
 * before. Throws SimError 'invalid-options' when the file cannot be opened
 * or `pollMs` is not a positive number. A bad line, a command the fleet
 * refuses, or an I/O error during a poll is logged and never thrown.
 */
export function watchFaultFile(options: WatchFaultFileOptions): { stop(): void } {
  const { file, fleet, pollMs = 1_000 } = options;
  const log = options.logger.child({ component: 'fault-file', file });
  if (!(pollMs > 0) || !Number.isFinite(pollMs)) throw new SimError('invalid-options', `pollMs must be a positive number, got ${pollMs}`);

  let offset: number;
  /** Skipping the rest of a line, up to its newline: one that grew too long, or one begun before the watcher started. */
  let discarding = false;
  try {
    // Synchronous, once: the starting size must be known when this function returns.
    const fd = openSync(file, 'a+', FILE_MODE);
    try {
      offset = fstatSync(fd).size;
      if (offset > 0) {
        const last = Buffer.alloc(1);
        readSync(fd, last, 0, 1, offset - 1);
        discarding = last[0] !== NEWLINE;
      }
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw new SimError('invalid-options', `cannot open the fault file ${file}: ${(err as Error).message}`, { cause: err });
  }

  let partial: Buffer = Buffer.alloc(0);
  /** The last poll failed on I/O: the next failure is not logged again until a poll succeeds. */
  let failing = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const run = (text: string): void => {
    const parsed = parseFaultCommand(text);
    if (!parsed.ok) {
      log.warn({ line: quote(text), problems: parsed.problems }, 'bad fault command skipped');
      return;
    }
    const command = parsed.value;
    if (command === null) return;
    try {
      if (command.action === 'add') {
        fleet.injectFault(command.spec);
        log.info({ command: formatFaultCommand(command) }, 'fault command run');
      } else if (fleet.clearFault(command.kind, command.target)) {
        log.info({ command: formatFaultCommand(command) }, 'fault command run');
      } else {
        log.warn({ command: formatFaultCommand(command) }, 'no such fault to clear');
      }
    } catch (err) {
      log.warn({ err, command: formatFaultCommand(command) }, 'fault command refused');
    }
  };

  const consume = (chunk: Buffer): void => {
    let data = partial.length > 0 ? Buffer.concat([partial, chunk]) : chunk;
    let newline = data.indexOf(NEWLINE);
    while (newline >= 0 && !stopped) {
      const line = data.subarray(0, newline);
      data = data.subarray(newline + 1);
      newline = data.indexOf(NEWLINE);
      if (discarding) {
        discarding = false;
        continue;
      }
      run(line.toString('utf8').replace(/\r$/, ''));
    }
    if (discarding) {
      partial = Buffer.alloc(0);
    } else if (data.length > MAX_PARTIAL_LINE_BYTES) {
      log.warn({ bytes: data.length }, 'fault command line too long; skipped up to its end');
      partial = Buffer.alloc(0);
      discarding = true;
    } else {
      // A copy: the chunk it points into is not kept alive with it.
      partial = Buffer.from(data);
    }
  };

  const poll = async (): Promise<void> => {
    const { size } = await stat(file);
    if (size < offset) {
      log.info({ size, offset }, 'fault file shrank; reading it again from the start');
      offset = 0;
      partial = Buffer.alloc(0);
      discarding = false;
    }
    if (size === offset) return;
    const length = Math.min(size - offset, MAX_FAULT_FILE_READ_BYTES);
    const buffer = Buffer.alloc(length);
    const handle = await open(file, 'r');
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(buffer, 0, length, offset));
    } finally {
      await handle.close();
    }
    if (stopped) return;
    offset += bytesRead;
    consume(buffer.subarray(0, bytesRead));
  };

  const tick = (): void => {
    timer = undefined;
    poll().then(
      () => {
        failing = false;
      },
      (err: unknown) => {
        if (!failing) log.warn({ err }, 'reading the fault file failed; retrying');
        failing = true;
      },
    ).finally(() => {
      if (!stopped) timer = setTimeout(tick, pollMs);
    });
  };
  timer = setTimeout(tick, pollMs);

  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}

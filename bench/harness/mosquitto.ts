/**
 * Mosquitto (the Debian package) as a reference broker: started on a free
 * loopback port with a generated config that never drops messages
 * (`max_queued_messages 0`, `max_inflight_messages 0`: with its defaults it
 * silently drops messages to a slow subscriber under load), anonymous, no
 * persistence. `findMosquitto()` says whether it is installed, so a scenario
 * can report "not measured" instead of failing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { delimiter, join } from 'node:path';
import { freePort } from '../../test/support/processes.ts';

export interface Mosquitto {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Stops the broker (SIGTERM, then SIGKILL after 3 s); idempotent. */
  stop(): Promise<void>;
}

/** Path of the mosquitto binary (PATH, then /usr/sbin, where Debian puts it), or undefined. */
export function findMosquitto(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'mosquitto');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this folder.
    }
  }
  return undefined;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startMosquitto(options: { workDir: string; binary?: string; startTimeoutMs?: number }): Promise<Mosquitto> {
  const binary = options.binary ?? findMosquitto();
  if (binary === undefined) throw new Error('mosquitto is not installed (run scripts/install-deps.sh)');
  const port = await freePort();
  const configFile = join(options.workDir, `mosquitto-${port}.conf`);
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    // Never drop: with the defaults (1000 queued, 20 in flight) a slow subscriber loses messages silently.
    'max_queued_messages 0',
    'max_inflight_messages 0',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
  ];
  // As root, mosquitto would switch to the `mosquitto` user, which may not read the work folder.
  if (process.getuid?.() === 0) lines.push('user root');
  writeFileSync(configFile, `${lines.join('\n')}\n`);

  const child: ChildProcess = spawn(binary, ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    if (stderr.length < 10_000) stderr += chunk;
  });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );

  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  for (;;) {
    if (exited) throw new Error(`mosquitto exited at start: ${stderr.trim()}`);
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`mosquitto did not listen on port ${port} within its start timeout: ${stderr.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  let stopping: Promise<void> | undefined;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? 0,
    stop() {
      stopping ??= (async () => {
        if (exited) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
        await exit;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/**
 * A real server from a Debian package, for tests: found on the PATH (a
 * missing one is an error naming the install script, never a silent skip),
 * started as a child process on a free loopback port with its files in a
 * temporary folder, and ready once its readiness URL answers 2xx.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** The first of `names` that is an executable on the PATH (or /usr/bin, /usr/local/bin); throws naming `packageName` otherwise. */
export function findBinary(names: readonly string[], packageName: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin'].filter((d) => d !== '');
  for (const dir of dirs) {
    for (const name of names) {
      const path = join(dir, name);
      try {
        accessSync(path, constants.X_OK);
        return path;
      } catch {
        // next
      }
    }
  }
  throw new Error(`${packageName} is not installed: run ./scripts/install-deps.sh (it installs the Debian package ${packageName})`);
}

export async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface ServerProcess {
  url: string;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
}

/**
 * Starts `binary` with `args(port, dir)` (`dir` a fresh temporary folder
 * for its configuration and data) and waits until `readyPath` answers 2xx;
 * throws with the server's output when it exits first or is not ready
 * within `readyTimeoutMs`.
 */
export async function startServerProcess(options: {
  name: string;
  binary: string;
  args: (port: number, dir: string) => string[];
  readyPath: string;
  readyTimeoutMs: number;
}): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), `vpp-${options.name}-`));
  const port = await freeLoopbackPort();
  const child: ChildProcess = spawn(options.binary, options.args(port, dir), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const stop = async (): Promise<void> => {
    if (!exited) child.kill('SIGTERM');
    await exit;
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + options.readyTimeoutMs;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`${options.name} exited at start:\n${output}`);
    }
    try {
      if ((await fetch(`${url}${options.readyPath}`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${options.name} not ready within ${options.readyTimeoutMs / 1000} s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url, stop };
}

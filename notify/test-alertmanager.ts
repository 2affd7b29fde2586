/**
 * Starts the real Prometheus Alertmanager (the Debian package
 * `prometheus-alertmanager`, installed by scripts/install-deps.sh) on a free
 * loopback port, clustering off, storage in a temporary folder, with a
 * minimal configuration whose only receiver discards notifications.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const CANDIDATES = ['prometheus-alertmanager', 'alertmanager'];

/** The binary's path; throws, saying how to install it, when it is missing (never a silent skip). */
export function findAlertmanager(): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin'].filter((d) => d !== '');
  for (const dir of dirs) {
    for (const name of CANDIDATES) {
      const path = join(dir, name);
      try {
        accessSync(path, constants.X_OK);
        return path;
      } catch {
        // next
      }
    }
  }
  throw new Error('prometheus-alertmanager is not installed: run scripts/install-deps.sh (it installs the Debian package prometheus-alertmanager)');
}

export interface RunningAlertmanager {
  url: string;
  version: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export async function startAlertmanager(): Promise<RunningAlertmanager> {
  const binary = findAlertmanager();
  const dir = mkdtempSync(join(tmpdir(), 'vpp-alertmanager-'));
  const config = join(dir, 'alertmanager.yml');
  writeFileSync(config, 'route:\n  receiver: discard\nreceivers:\n  - name: discard\n');
  const port = await freePort();
  const child: ChildProcess = spawn(
    binary,
    [`--config.file=${config}`, `--storage.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
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
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`alertmanager exited at start:\n${output}`);
    }
    try {
      const response = await fetch(`${url}/-/ready`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`alertmanager not ready within 20 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const status = (await (await fetch(`${url}/api/v2/status`)).json()) as { versionInfo?: { version?: string } };
  return { url, version: status.versionInfo?.version ?? 'unknown', stop };
}

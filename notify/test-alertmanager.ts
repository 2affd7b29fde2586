/**
 * Starts the real Prometheus Alertmanager (the Debian package
 * `prometheus-alertmanager`, installed by scripts/install-deps.sh) on a free
 * loopback port, clustering off, storage in a temporary folder, with a
 * minimal configuration whose only receiver discards notifications.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findBinary, startServerProcess } from '../test/support/server-process.ts';

/** The binary's path; throws, saying how to install it, when it is missing (never a silent skip). */
export function findAlertmanager(): string {
  return findBinary(['prometheus-alertmanager', 'alertmanager'], 'prometheus-alertmanager');
}

export interface RunningAlertmanager {
  url: string;
  version: string;
  stop(): Promise<void>;
}

export async function startAlertmanager(): Promise<RunningAlertmanager> {
  const { url, stop } = await startServerProcess({
    name: 'alertmanager',
    binary: findAlertmanager(),
    readyPath: '/-/ready',
    readyTimeoutMs: 20_000,
    args: (port, dir) => {
      const config = join(dir, 'alertmanager.yml');
      writeFileSync(config, 'route:\n  receiver: discard\nreceivers:\n  - name: discard\n');
      return [`--config.file=${config}`, `--storage.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', '--log.level=warn'];
    },
  });
  const status = (await (await fetch(`${url}/api/v2/status`)).json()) as { versionInfo?: { version?: string } };
  return { url, version: status.versionInfo?.version ?? 'unknown', stop };
}

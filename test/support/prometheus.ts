/**
 * Starts a real Prometheus (the Debian package `prometheus`, installed by
 * scripts/install-deps.sh) on a free loopback port, its storage in a
 * temporary folder, scraping the given targets every second.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findBinary, startServerProcess } from './server-process.ts';

/** The binary's path; throws, saying how to install it, when it is missing (never a silent skip). */
export function findPrometheus(): string {
  return findBinary(['prometheus'], 'prometheus');
}

export interface RunningPrometheus {
  url: string;
  /** An instant query through the HTTP API: each series' labels and value. */
  query(promql: string): Promise<Array<{ metric: Record<string, string>; value: number }>>;
  stop(): Promise<void>;
}

/** `targets`: host:port of metrics servers on this machine, scraped at /metrics every second. */
export async function startPrometheus(targets: readonly string[]): Promise<RunningPrometheus> {
  const { url, stop } = await startServerProcess({
    name: 'prometheus',
    binary: findPrometheus(),
    readyPath: '/-/ready',
    readyTimeoutMs: 30_000,
    args: (port, dir) => {
      const config = join(dir, 'prometheus.yml');
      writeFileSync(
        config,
        [
          'global:',
          '  scrape_interval: 1s',
          '  evaluation_interval: 1s',
          'scrape_configs:',
          '  - job_name: vpp',
          '    metrics_path: /metrics',
          '    static_configs:',
          `      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]`,
          '',
        ].join('\n'),
      );
      return [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'];
    },
  });
  return {
    url,
    async query(promql) {
      const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = (await response.json()) as { status: string; error?: string; data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      if (body.status !== 'success' || !body.data) throw new Error(`prometheus query ${promql} failed: ${body.error ?? response.status}`);
      return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    stop,
  };
}

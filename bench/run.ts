/**
 * `npm run bench [-- <scenario>... [key=value]...]`: runs the named scenarios
 * (all of them by default, in a fixed order), each within its time bound,
 * printing progress, a table and its targets, and writing JSON to
 * bench/results/. Adding a scenario is adding one file to bench/scenarios/.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeMachine } from './harness/machine.ts';
import { updatePerformanceDoc } from './harness/performance-doc.ts';
import { formatTable, formatTargets, writeResult } from './harness/report.ts';
import type { Scenario, ScenarioResult } from './harness/scenario.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const ORDER = ['ingest', 'broker', 'connections', 'query', 'fleet', 'poison', 'alerts', 'dispatch', 'access', 'stream', 'influx', 'metrics'];

async function loadScenarios(): Promise<Map<string, Scenario>> {
  const scenarios = new Map<string, Scenario>();
  for (const file of readdirSync(join(here, 'scenarios')).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
    const module = (await import(join(here, 'scenarios', file))) as { default?: Scenario };
    if (module.default) scenarios.set(module.default.name, module.default);
  }
  return scenarios;
}

function withTimeout<T>(promise: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`scenario ${name} exceeded its bound of ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main(argv: string[]): Promise<number> {
  const scenarios = await loadScenarios();
  const names = argv.filter((a) => !a.includes('='));
  const args = Object.fromEntries(argv.filter((a) => a.includes('=')).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
  const unknown = names.filter((n) => !scenarios.has(n));
  if (unknown.length > 0) {
    process.stderr.write(`unknown scenario(s): ${unknown.join(', ')}; known: ${[...scenarios.keys()].join(', ')}\n`);
    return 2;
  }
  const selected = names.length > 0 ? names : [...scenarios.keys()].sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99));
  const machine = describeMachine();
  process.stdout.write(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, commit ${machine.commit}${machine.dirty ? ' (dirty)' : ''}\n`);
  let failures = 0;
  for (const name of selected) {
    const scenario = scenarios.get(name)!;
    const startedAt = new Date();
    const workDir = mkdtempSync(join(tmpdir(), `vpp-bench-${name}-`));
    const boundMs = typeof scenario.maxDurationMs === 'function' ? scenario.maxDurationMs(args) : scenario.maxDurationMs;
    process.stdout.write(`\n== ${name}: ${scenario.description} (bound ${boundMs / 1000} s)\n`);
    const t0 = performance.now();
    let lastProgress = 0;
    try {
      const result: ScenarioResult = await withTimeout(
        scenario.run({
          args,
          workDir,
          deadline: Date.now() + boundMs,
          progress: (message) => {
            const now = performance.now();
            if (now - lastProgress < 250) return;
            lastProgress = now;
            process.stdout.write(`  [${((now - t0) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);
          },
        }),
        boundMs,
        name,
      );
      const durationMs = Math.round(performance.now() - t0);
      process.stdout.write(`\n${formatTable(result.rows)}\n`);
      if (result.targets.length > 0) process.stdout.write(`\n${formatTargets(result)}\n`);
      for (const note of result.notes ?? []) process.stdout.write(`  note: ${note}\n`);
      const command = `npm run bench -- ${[name, ...argv.filter((a) => a.includes('='))].join(' ')}`;
      const file = writeResult(join(here, 'results'), { scenario: name, startedAt: startedAt.toISOString(), durationMs, machine, command, result });
      process.stdout.write(`  ${name} took ${(durationMs / 1000).toFixed(0)} s; written to ${file}\n`);
    } catch (error) {
      failures++;
      process.stdout.write(`  ${name} failed: ${(error as Error).stack ?? String(error)}\n`);
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  }
  updatePerformanceDoc(join(here, '..', 'docs', 'PERFORMANCE.md'), join(here, 'results'), ORDER);
  process.stdout.write(`\ndocs/PERFORMANCE.md updated from the latest result of each scenario\n`);
  return failures > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
// Scenarios close what they open; a stray handle must not keep the run alive.
setTimeout(() => process.exit(process.exitCode ?? 0), 2_000).unref();

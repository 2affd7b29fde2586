/**
 * Keeps docs/PERFORMANCE.md's tables current: after a run, the part between
 * the `bench:begin` and `bench:end` markers is rebuilt from the latest result
 * of every scenario in bench/results/; the prose around it is left alone.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { formatTable, formatTargets, type StoredResult } from './report.ts';

const BEGIN = '<!-- bench:begin (written by npm run bench; edit outside the markers) -->';
const END = '<!-- bench:end -->';

export function renderResults(results: readonly StoredResult[]): string {
  const parts: string[] = [];
  const allTargets = results.flatMap((r) => r.result.targets.map((t) => ({ scenario: r.scenario, ...t })));
  if (allTargets.length > 0) {
    parts.push('### Targets', '', formatTable(allTargets.map((t) => ({
      scenario: t.scenario,
      target: t.name,
      promise: t.target,
      measured: `${Math.round(t.measured * 100) / 100} ${t.unit}`,
      status: t.met ? 'met' : 'MISSED',
    }))), '');
  }
  for (const r of results) {
    parts.push(
      `### ${r.scenario}`,
      '',
      `\`${r.command}\` — ${r.startedAt.slice(0, 19).replace('T', ' ')} UTC, commit ${r.machine.commit}${r.machine.dirty ? ' (uncommitted changes)' : ''}, ${r.machine.cpuModel} × ${r.machine.cores}, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, ${Math.round(r.durationMs / 1000)} s`,
      '',
      formatTable(r.result.rows),
      '',
    );
    if (r.result.targets.length > 0) parts.push(formatTargets(r.result), '');
    for (const note of r.result.notes ?? []) parts.push(`- ${note}`);
    if ((r.result.notes ?? []).length > 0) parts.push('');
  }
  return parts.join('\n');
}

export function updatePerformanceDoc(docFile: string, resultsDir: string, order: readonly string[]): void {
  if (!existsSync(resultsDir)) return;
  const results = readdirSync(resultsDir)
    .filter((f) => f.endsWith('-latest.json'))
    .map((f) => JSON.parse(readFileSync(join(resultsDir, f), 'utf8')) as StoredResult)
    .sort((a, b) => (order.indexOf(a.scenario) + 1 || 99) - (order.indexOf(b.scenario) + 1 || 99));
  const block = `${BEGIN}\n\n${renderResults(results)}\n${END}`;
  const current = existsSync(docFile) ? readFileSync(docFile, 'utf8') : `# Performance\n\n${BEGIN}\n${END}\n`;
  const start = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  const next = start >= 0 && end > start ? current.slice(0, start) + block + current.slice(end + END.length) : `${current.trimEnd()}\n\n${block}\n`;
  mkdirSync(dirname(docFile), { recursive: true });
  writeFileSync(docFile, next);
}

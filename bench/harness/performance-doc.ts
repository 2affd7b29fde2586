/**
 * Keeps docs/PERFORMANCE.md's tables current: after a run, the part between
 * the `bench:begin` and `bench:end` markers is rebuilt from the latest result
 * of every scenario in bench/results/; the prose around it is left alone.
 * Results are not committed, so a scenario with no result here (on a fresh
 * clone, every one that was not run) keeps its section and its target rows
 * as the document has them.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { formatTable, formatTargets, type StoredResult } from './report.ts';

const BEGIN = '<!-- bench:begin (written by npm run bench; edit outside the markers) -->';
const END = '<!-- bench:end -->';

type TargetRow = Record<'scenario' | 'target' | 'promise' | 'measured' | 'status', string>;

/** What the document already has: each scenario's section and its rows of the targets table. */
interface KeptResults {
  sections: Map<string, string>;
  targetRows: TargetRow[];
}

const NO_KEPT_RESULTS: KeptResults = { sections: new Map(), targetRows: [] };

/** Reads the sections (`### name` up to the next one) and target rows out of a block this module wrote. */
export function parseBlock(block: string): KeptResults {
  const sections = new Map<string, string>();
  const targetRows: TargetRow[] = [];
  for (const part of block.split(/^(?=### )/m)) {
    const name = /^### (\S+)/.exec(part)?.[1];
    if (name === undefined) continue;
    if (name !== 'Targets') {
      sections.set(name, part.trim());
      continue;
    }
    // Heading, blank line, column names, separator, then the rows.
    for (const line of part.split('\n').slice(4)) {
      const cells = line.split('|').slice(1, -1).map((cell) => cell.trim());
      if (cells.length !== 5) continue;
      const [scenario, target, promise, measured, status] = cells as [string, string, string, string, string];
      targetRows.push({ scenario, target, promise, measured, status });
    }
  }
  return { sections, targetRows };
}

export function renderResults(results: readonly StoredResult[], kept: KeptResults = NO_KEPT_RESULTS, order: readonly string[] = []): string {
  const parts: string[] = [];
  const rank = (scenario: string) => order.indexOf(scenario) + 1 || 99;
  const fresh = new Set(results.map((r) => r.scenario));
  const targetRows: TargetRow[] = [
    ...kept.targetRows.filter((row) => !fresh.has(row.scenario)),
    ...results.flatMap((r) =>
      r.result.targets.map((t) => ({
        scenario: r.scenario,
        target: t.name,
        promise: t.target,
        measured: `${Math.round(t.measured * 100) / 100} ${t.unit}`,
        status: t.met ? 'met' : 'MISSED',
      })),
    ),
  ].sort((a, b) => rank(a.scenario) - rank(b.scenario));
  if (targetRows.length > 0) parts.push('### Targets', '', formatTable(targetRows), '');
  const sections = new Map(kept.sections);
  for (const r of results) sections.set(r.scenario, renderSection(r));
  for (const name of [...sections.keys()].sort((a, b) => rank(a) - rank(b))) parts.push(sections.get(name)!, '');
  return parts.join('\n');
}

function renderSection(r: StoredResult): string {
  const parts = [
    `### ${r.scenario}`,
    '',
    `\`${r.command}\` — ${r.startedAt.slice(0, 19).replace('T', ' ')} UTC, commit ${r.machine.commit}${r.machine.dirty ? ' (uncommitted changes)' : ''}, ${r.machine.cpuModel} × ${r.machine.cores}, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, ${Math.round(r.durationMs / 1000)} s`,
    '',
    formatTable(r.result.rows),
    '',
  ];
  if (r.result.targets.length > 0) parts.push(formatTargets(r.result), '');
  for (const note of r.result.notes ?? []) parts.push(`- ${note}`);
  return parts.join('\n').trim();
}

export function updatePerformanceDoc(docFile: string, resultsDir: string, order: readonly string[]): void {
  if (!existsSync(resultsDir)) return;
  const results = readdirSync(resultsDir)
    .filter((f) => f.endsWith('-latest.json'))
    .map((f) => JSON.parse(readFileSync(join(resultsDir, f), 'utf8')) as StoredResult);
  const current = existsSync(docFile) ? readFileSync(docFile, 'utf8') : `# Performance\n\n${BEGIN}\n${END}\n`;
  const start = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  const kept = start >= 0 && end > start ? parseBlock(current.slice(start + BEGIN.length, end)) : NO_KEPT_RESULTS;
  const block = `${BEGIN}\n\n${renderResults(results, kept, order)}\n${END}`;
  const next = start >= 0 && end > start ? current.slice(0, start) + block + current.slice(end + END.length) : `${current.trimEnd()}\n\n${block}\n`;
  mkdirSync(dirname(docFile), { recursive: true });
  writeFileSync(docFile, next);
}

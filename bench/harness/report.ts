/** Prints a scenario's result as tables and writes it as JSON. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatNumber } from './stats.ts';
import type { MachineInfo } from './machine.ts';
import type { Row, ScenarioResult } from './scenario.ts';

export function formatTable(rows: readonly Row[]): string {
  if (rows.length === 0) return '(no rows)';
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  // A stored result's NaN comes back from JSON as null: an empty cell, like a missing one.
  const cell = (value: string | number | null | undefined) => (value === undefined || value === null ? '' : typeof value === 'number' ? formatNumber(value) : value);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => `| ${values.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(columns), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join('\n');
}

export function formatTargets(result: ScenarioResult): string {
  return formatTable(
    result.targets.map((t) => ({ target: t.name, promise: t.target, measured: `${formatNumber(t.measured)} ${t.unit}`, status: t.met ? 'met' : 'MISSED' })),
  );
}

export interface StoredResult {
  scenario: string;
  startedAt: string;
  durationMs: number;
  machine: MachineInfo;
  command: string;
  result: ScenarioResult;
}

export function writeResult(dir: string, stored: StoredResult): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${stored.scenario}-${stored.startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(stored, null, 2)}\n`);
  writeFileSync(join(dir, `${stored.scenario}-latest.json`), `${JSON.stringify(stored, null, 2)}\n`);
  return file;
}

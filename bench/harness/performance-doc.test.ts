/**
 * docs/PERFORMANCE.md after running one scenario on a clone where the other
 * scenarios' results are not present (results are not committed): the
 * other sections and target rows stay as they were; the run's own replace
 * its old ones.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { updatePerformanceDoc } from './performance-doc.ts';
import { writeResult, type StoredResult } from './report.ts';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function result(scenario: string, measured: number): StoredResult {
  return {
    scenario,
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 1_000,
    machine: { cpuModel: 'cpu', cores: 2, memoryGiB: 24, node: 'v20', platform: 'linux', commit: 'abc', dirty: false },
    command: `npm run bench -- ${scenario}`,
    result: {
      parameters: {},
      rows: [{ figure: measured }],
      targets: [{ name: `${scenario} target`, target: '≤ 1', measured, unit: 'x', met: measured <= 1 }],
      notes: [`note of ${scenario}`],
    },
  };
}

it('keeps the sections and target rows of scenarios that were not run here, and replaces those that were', () => {
  dir = mkdtempSync(join(tmpdir(), 'vpp-perfdoc-'));
  const doc = join(dir, 'PERFORMANCE.md');
  const first = join(dir, 'first');
  const second = join(dir, 'second');
  mkdirSync(first);
  mkdirSync(second);
  writeFileSync(doc, '# Performance\n\nprose before\n');
  writeResult(first, result('alpha', 0.5));
  writeResult(first, result('beta', 2));
  updatePerformanceDoc(doc, first, ['alpha', 'beta']);

  // Another clone: only beta was run, with a new figure.
  writeResult(second, result('beta', 0.25));
  updatePerformanceDoc(doc, second, ['alpha', 'beta']);
  const text = readFileSync(doc, 'utf8');
  expect(text).toMatch(/^# Performance\n\nprose before\n/);
  expect(text.match(/^### \S+/gm)).toEqual(['### Targets', '### alpha', '### beta']);
  expect(text).toMatch(/\| alpha +\| alpha target +\| ≤ 1 +\| 0\.5 x +\| met +\|/);
  expect(text).toMatch(/\| beta +\| beta target +\| ≤ 1 +\| 0\.25 x +\| met +\|/);
  expect(text).not.toMatch(/2 x/);
  expect(text).toContain('- note of alpha');
  // The separator of the kept table is not read back as a row.
  expect(text).not.toMatch(/^\| -+ +\|/m);
});

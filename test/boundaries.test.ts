/**
 * The parts meet only where the design draws it: over MQTT topics and
 * through the storage ports. This test reads every production source file
 * (tests and their helpers may wire parts together) and fails on an import
 * that crosses a boundary:
 *
 * - protocol imports no other part;
 * - the simulator imports only protocol (it is firmware: MQTT only);
 * - store imports only protocol;
 * - broker imports neither ingest, control nor the simulator;
 * - ingest imports neither control, broker internals nor the simulator;
 * - control imports neither ingest, broker nor the simulator;
 * - notify imports only protocol and store (it knows no HTTP server, no
 *   pipeline and no broker: the outbox and the Notifier port);
 * - dispatch imports only protocol and store (the command queue, the
 *   allocator and the control loop talk MQTT through what cli hands them);
 * - the dashboard (browser code) imports only protocol: it talks to the
 *   platform over HTTP and the stream, never through another part's code;
 * - only cli (and bench, which drives the platform) imports cli.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const PARTS = ['protocol', 'store', 'broker', 'ingest', 'control', 'notify', 'dispatch', 'devices-sim', 'dashboard', 'cli'] as const;
type Part = (typeof PARTS)[number];

const ALLOWED: Record<Part, readonly Part[]> = {
  protocol: [],
  'devices-sim': ['protocol'],
  store: ['protocol'],
  broker: ['protocol', 'store'],
  ingest: ['protocol', 'store'],
  control: ['protocol', 'store'],
  notify: ['protocol', 'store'],
  dispatch: ['protocol', 'store'],
  dashboard: ['protocol'],
  cli: ['protocol', 'store', 'broker', 'ingest', 'control', 'notify', 'dispatch', 'devices-sim'],
};

function productionFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...productionFiles(path));
    else if (/\.tsx?$/.test(entry.name) && !/\.test\.tsx?$|^test-|\.contract\.ts$/.test(entry.name) && !path.includes(`${join('store', 'contract')}`)) out.push(path);
  }
  return out;
}

/** Relative import specifiers of a file (static imports and re-exports, dynamic imports). */
export function importsOf(source: string): string[] {
  const specifiers: string[] = [];
  const pattern = /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;
  for (const match of source.matchAll(pattern)) {
    const specifier = match[1] ?? match[2] ?? match[3];
    if (specifier?.startsWith('.')) specifiers.push(specifier);
  }
  return specifiers;
}

function partOf(file: string): Part | 'other' {
  const first = relative(ROOT, file).split(/[\\/]/)[0];
  return (PARTS as readonly string[]).includes(first ?? '') ? (first as Part) : 'other';
}

describe('part boundaries', () => {
  it('finds the imports it checks (the check itself works)', () => {
    expect(importsOf(`import { a } from '../store/types.ts';\nexport * from './x.ts';\nconst m = await import('../cli/vpp.ts');`)).toEqual([
      '../store/types.ts',
      './x.ts',
      '../cli/vpp.ts',
    ]);
  });

  for (const part of PARTS) {
    it(`${part} imports only ${ALLOWED[part].join(', ') || 'itself'}`, () => {
      const crossings: string[] = [];
      const files = productionFiles(join(ROOT, part));
      expect(files.length).toBeGreaterThan(0);
      for (const file of files) {
        for (const specifier of importsOf(readFileSync(file, 'utf8'))) {
          const target = partOf(resolve(dirname(file), specifier));
          if (target !== part && !(ALLOWED[part] as readonly string[]).includes(target)) {
            crossings.push(`${relative(ROOT, file)} imports ${specifier} (${target})`);
          }
        }
      }
      expect(crossings).toEqual([]);
    });
  }
});

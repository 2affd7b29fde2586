/**
 * No container engine runs here, so docker-compose.yml is checked as a file:
 * against the Compose Specification's JSON schema, and against the platform's
 * own commands and settings, so that the file cannot drift from the code.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../cli/config.ts';

const root = new URL('..', import.meta.url);
const composeText = readFileSync(new URL('docker-compose.yml', root), 'utf8');

interface ComposeService {
  command?: string[];
  environment?: Record<string, string>;
  build?: string;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
}

describe('docker-compose.yml', () => {
  const compose = parse(composeText, { merge: true }) as ComposeFile;

  it('is valid against the Compose Specification schema', () => {
    // The schema is draft-07 but names its meta-schema by an https address,
    // which Ajv knows only by its http one; it is dropped, Ajv's default is draft-07.
    const { $schema: _metaSchema, ...schema } = JSON.parse(
      readFileSync(new URL('node_modules/dclint/schemas/compose.schema.json', root), 'utf8'),
    ) as Record<string, unknown>;
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = ajv.compile(schema);
    const valid = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  it('runs every part as its own service with a vpp command', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['broker', 'control', 'dispatch', 'ingest', 'sim']);
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.command, name).toEqual([name]);
      expect(service.build, name).toBe('.');
    }
  });

  it('sets only settings the platform knows', () => {
    const known = new Set(CONFIG_VARIABLES.map((v) => v.name));
    for (const service of Object.values(compose.services)) {
      for (const name of Object.keys(service.environment ?? {})) expect(known.has(name), name).toBe(true);
    }
  });

  it('builds from a Dockerfile that copies every part', () => {
    const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');
    // Every part (a folder with an index.ts), so a new one cannot be left out of the image.
    const parts = readdirSync(new URL('.', root), { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && existsSync(new URL(`${entry.name}/index.ts`, root)))
      .map((entry) => entry.name);
    expect(parts).toEqual(expect.arrayContaining(['notify', 'dispatch', 'store']));
    for (const part of ['bin', 'cli', ...parts]) {
      expect(dockerfile).toMatch(new RegExp(`^COPY ${part} \\./${part}$`, 'm'));
    }
    // The dashboard is built by npm ci (its prepare script) in the deps stage, from its sources, and only the bundle is kept.
    expect(dockerfile).toMatch(/^COPY dashboard \.\/dashboard\n(?:.*\n)*?RUN npm ci/m);
    expect(dockerfile).toMatch(/^COPY --from=deps \/app\/dashboard\/dist \.\/dashboard\/dist$/m);
  });
});

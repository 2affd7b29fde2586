/** The README's configuration table must list every setting the platform reads, and only those. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../cli/config.ts';

describe('README', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

  it('documents every configuration variable', () => {
    const documented = [...readme.matchAll(/^\| `(VPP_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect(documented).toEqual(CONFIG_VARIABLES.map((v) => v.name));
  });

  it('gives the test command that CI runs', () => {
    const ci = readFileSync(new URL('../.ci/run', import.meta.url), 'utf8');
    const command = ci.trim().split('\n').at(-1)!;
    expect(readme).toContain(`\n${command}\n`);
  });
});

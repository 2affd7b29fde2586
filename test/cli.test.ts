/** The `vpp` command as a user runs it: bad configuration stops start-up with every problem listed. */
import { describe, expect, it } from 'vitest';
import { spawnVpp } from './support/processes.ts';

describe('vpp command', () => {
  it('refuses to start with bad configuration, listing every problem, exit code 2', async () => {
    const vpp = spawnVpp('up', { VPP_HTTP_PORT: '99999', VPP_SIM_SITES: 'many', VPP_INGEST_SOURCE: 'kafka', VPP_DATA_DIR: '/nonexistent-never-created' });
    expect(await vpp.exited).toBe(2);
    const output = vpp.output();
    expect(output).toContain('invalid configuration');
    for (const name of ['VPP_HTTP_PORT', 'VPP_SIM_SITES', 'VPP_INGEST_SOURCE']) expect(output).toContain(name);
  });

  it('prints its commands and settings for help, and refuses unknown commands', async () => {
    const help = spawnVpp('help', {});
    expect(await help.exited).toBe(0);
    expect(help.output()).toMatch(/usage: vpp <command>[\s\S]*VPP_SIM_SPEED/);
    const unknown = spawnVpp('launch', {});
    expect(await unknown.exited).toBe(2);
  });
});

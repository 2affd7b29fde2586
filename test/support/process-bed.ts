/**
 * Test support for test files that run `vpp` as child processes: a data
 * folder and free ports per test file, and the processes killed and the
 * folder removed after it.
 */
import { afterAll } from 'vitest';
import { ADMIN_TOKEN, removeDir, tempDataDir } from './platform.ts';
import { freePort, spawnVpp, stopVpp, type VppProcess } from './processes.ts';

export interface ProcessTestBed {
  /** The data folder the processes share, removed after the test file. */
  dataDir: string;
  /** The environment of a `vpp` process on free ports and `dataDir`, with the test admin token; `extra` is added. */
  env(extra?: Record<string, string>): Promise<{ env: Record<string, string>; mqttPort: number; httpPort: number }>;
  /** Spawns `vpp <command> [args…]`; whatever is still running after the test file is killed. */
  spawn(command: string, env: Record<string, string>, args?: readonly string[]): VppProcess;
}

/** Registers the cleanup of a test file that runs `vpp` as child processes. */
export function useProcessTestBed(): ProcessTestBed {
  const dataDir = tempDataDir();
  const running: VppProcess[] = [];
  afterAll(async () => {
    for (const p of running.reverse()) await stopVpp(p, 'SIGKILL');
    removeDir(dataDir);
  });
  return {
    dataDir,
    async env(extra = {}) {
      const [mqttPort, httpPort] = [await freePort(), await freePort()];
      const env = {
        VPP_DATA_DIR: dataDir,
        VPP_MQTT_PORT: String(mqttPort),
        VPP_HTTP_PORT: String(httpPort),
        VPP_ADMIN_TOKEN: ADMIN_TOKEN,
        ...extra,
      };
      return { env, mqttPort, httpPort };
    },
    spawn(command, env, args = []) {
      const p = spawnVpp(command, env, args);
      running.push(p);
      return p;
    },
  };
}

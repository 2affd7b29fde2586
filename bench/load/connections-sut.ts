/**
 * The system under test of the connections scenario, in its own process so
 * that its memory and CPU are the platform's alone: broker, tap, ingest and
 * SQLite store as `vpp up` wires them (bench/harness/platform.ts). Driven
 * over IPC (connections-ipc.ts); run with --expose-gc so a sample can be
 * taken after a full collection.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { startSystemUnderTest, type SystemUnderTest } from '../harness/platform.ts';
import type { DeviceLogin, SutReply, SutRequest, SutSample } from './connections-ipc.ts';

const workDir = process.env.VPP_BENCH_WORK_DIR;
if (!workDir || !process.send) {
  process.stderr.write('connections-sut: run me through the connections scenario (IPC and VPP_BENCH_WORK_DIR needed)\n');
  process.exit(2);
}
const send = (reply: SutReply): void => {
  process.send?.(reply);
};

// `global.gc` exists only under --expose-gc.
const collect = (globalThis as { gc?: () => void }).gc;

let sut: SystemUnderTest | undefined;

function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const soft = line?.split(/\s{2,}/)[1];
  return soft === undefined || soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
}

function countOpenFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

function takeSample(running: SystemUnderTest): SutSample {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  const broker = running.brokerCounters();
  const ingest = running.counters;
  return {
    atMs: Date.now(),
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    externalBytes: memory.external,
    arrayBuffersBytes: memory.arrayBuffers,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    openFds: countOpenFds(),
    clientsConnected: broker.clientsConnected,
    connectionsAccepted: broker.connectionsAccepted,
    connectionsRefused: broker.connectionsRefused,
    clientErrors: broker.clientErrors,
    publishesReceived: broker.publishesReceived,
    tapPausedClients: broker.tapPausedClients,
    samplesCommitted: ingest.samplesCommitted,
    statusMessages: ingest.statusMessages,
    ingestInflight: running.inflight(),
    rejected: ingest.rejectedTotal(),
    writeFailures: ingest.writeFailures,
  };
}

async function handle(request: SutRequest): Promise<SutReply> {
  switch (request.type) {
    case 'start': {
      // VPP_BENCH_SUT_INGEST=0: the broker alone (no tap, no pipeline), to tell its cost from the pipeline's.
      sut = await startSystemUnderTest({ workDir: workDir!, logLevel: 'warn', ingest: process.env.VPP_BENCH_SUT_INGEST !== '0' });
      const { host, port } = sut.broker.address;
      return { id: request.id, type: 'started', mqttHost: host, mqttPort: port, fdLimit: openFileLimit() };
    }
    case 'provision': {
      if (!sut) throw new Error('not started');
      const t0 = performance.now();
      const devices: DeviceLogin[] = sut.provisionDevices(request.count).map(({ id, type, secret }) => ({ id, type, secret }));
      writeFileSync(request.file, JSON.stringify(devices));
      return { id: request.id, type: 'provisioned', count: devices.length, durationMs: Math.round(performance.now() - t0) };
    }
    case 'sample': {
      if (!sut) throw new Error('not started');
      if (request.gc && collect) {
        // Twice: the first pass may only queue finalizers that free more on the second.
        collect();
        collect();
      }
      return { id: request.id, type: 'sampled', sample: takeSample(sut) };
    }
    case 'stop': {
      await sut?.stop();
      sut = undefined;
      return { id: request.id, type: 'stopped' };
    }
  }
}

process.on('message', (message: SutRequest) => {
  handle(message).then(
    (reply) => {
      send(reply);
      if (reply.type === 'stopped') process.disconnect();
    },
    (error: unknown) => send({ id: message.id, type: 'failed', message: (error as Error).stack ?? String(error) }),
  );
});
// The parent going away ends the process, even mid-run.
process.on('disconnect', () => {
  void (sut?.stop() ?? Promise.resolve()).finally(() => process.exit(0));
});

/**
 * The doors against guessing: how many wrong credentials one source gets
 * checked before it is refused, with the default limits.
 *
 * - HTTP: one address sends `requests=` (default 300) requests with a wrong
 *   token as fast as answers come; counted: answered 401 (the token was
 *   checked) and answered 429 (refused before any check).
 * - MQTT: one address sends wrong-secret CONNECTs for one device id, one
 *   at a time, for `seconds=` (default 75, past the one-minute window):
 *   counted: CONNACK 4 after a check (in the first minute) versus refusals
 *   without one (the broker's `connectionsRefusedThrottled`).
 *
 * The peer in the same run is the first second: what an unthrottled door
 * would let through for the rest of the minute.
 */
import { pino } from 'pino';
import mqtt from 'mqtt';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../cli/config.ts';
import { openPlatform, startControlService, startEmbeddedIngest } from '../../cli/services.ts';
import { numberArg } from '../harness/args.ts';
import type { Scenario } from '../harness/scenario.ts';
import { round } from '../harness/stats.ts';

const scenario: Scenario = {
  name: 'access',
  description: 'wrong credentials checked per source before refusal, at both doors, with the default limits',
  maxDurationMs: (args) => 60_000 + numberArg(args, 'seconds', 75) * 1_000,
  async run({ args, workDir, progress }) {
    const requests = numberArg(args, 'requests', 300);
    const seconds = numberArg(args, 'seconds', 75);
    writeFileSync(join(workDir, 'none.json'), JSON.stringify({ rules: [] }));
    const config = loadConfig({ VPP_HTTP_PORT: '0', VPP_MQTT_PORT: '0', VPP_DATA_DIR: join(workDir, 'platform'), VPP_SIM_SITES: '0', VPP_ALERT_RULES: join(workDir, 'none.json') });
    {
      const platform = openPlatform(config, pino({ level: 'error' }, pino.destination(2)));
      const embedded = await startEmbeddedIngest(platform);
      const control = await startControlService(platform, embedded.broker.url);
      try {
        // HTTP: wrong tokens from one address.
        progress('HTTP: wrong tokens');
        const http: Record<number, number> = {};
        const t0 = performance.now();
        for (let i = 0; i < requests; i++) {
          const response = await fetch(`${control.url}/api/v1/fleet`, { headers: { authorization: 'Bearer vpp_not-a-valid-token-at-all-0000' } });
          http[response.status] = (http[response.status] ?? 0) + 1;
          await response.arrayBuffer();
        }
        const httpMs = performance.now() - t0;

        // MQTT: wrong secrets for one device id from one address, one CONNECT at a time.
        progress(`MQTT: wrong secrets for ${seconds} s`);
        platform.store.upsertSite({ id: 'guess-site', region: 'north', name: 'Guess' });
        platform.store.createDevice({ id: 'guess-battery', type: 'battery', siteId: 'guess-site', secretHash: 'x' }, Date.now());
        const before = embedded.broker.counters();
        let answers = 0;
        let firstSecond = 0;
        let checkedFirstMinute = 0;
        const m0 = Date.now();
        while (Date.now() - m0 < seconds * 1_000) {
          const throttledBefore = embedded.broker.counters().connectionsRefusedThrottled;
          await new Promise<void>((resolve) => {
            const client = mqtt.connect(embedded.broker.url, { clientId: 'guess-battery', username: 'guess-battery', password: 'wrong', reconnectPeriod: 0, connectTimeout: 10_000, protocolVersion: 4 });
            const done = () => {
              client.end(true);
              resolve();
            };
            client.once('error', done);
            client.once('close', done);
            client.once('connect', done);
          });
          answers++;
          if (Date.now() - m0 <= 1_000) firstSecond = answers;
          if (Date.now() - m0 <= 60_000 && embedded.broker.counters().connectionsRefusedThrottled === throttledBefore) checkedFirstMinute++;
        }
        const after = embedded.broker.counters();
        const throttled = after.connectionsRefusedThrottled - before.connectionsRefusedThrottled;
        const checked = answers - throttled;
        return {
          parameters: { httpRequests: requests, mqttSeconds: seconds, limits: 'defaults (VPP_HTTP_FAILED_AUTH_PER_ADDRESS_PER_MINUTE=30, VPP_MQTT_MAX_AUTH_FAILURES=20)' },
          rows: [
            { door: 'HTTP, wrong token', attempts: requests, 'credential checked': http[401] ?? 0, 'refused unchecked': http[429] ?? 0, 'attempts/s': round((requests / httpMs) * 1_000), 'checked per minute': http[401] ?? 0 },
            { door: 'MQTT, wrong secret', attempts: answers, 'credential checked': checked, 'refused unchecked': throttled, 'attempts/s': round(answers / seconds), 'checked per minute': checkedFirstMinute },
          ],
          targets: [
            { name: 'HTTP wrong tokens checked per address per minute', target: '≤ 30', measured: http[401] ?? 0, unit: 'per minute', met: (http[401] ?? 0) <= 30 },
            { name: 'MQTT wrong secrets checked per device id per minute', target: '≤ 20', measured: checkedFirstMinute, unit: 'per minute', met: checkedFirstMinute <= 20 },
          ],
          notes: [
            `MQTT: ${firstSecond} answers in the first second (the slowdown starts at the 4th failure), then ${throttled} CONNECTs refused without a check`,
            'both doors answer the refusals at once: a guesser is slowed to the limit, the platform is not',
          ],
        };
      } finally {
        await control.stop();
        await embedded.stop();
        await platform.store.close();
      }
    }
  },
};

export default scenario;

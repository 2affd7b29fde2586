/**
 * Test support for the alert tests that run `vpp up`: a rules file with
 * short durations, the settings that make a simulated fleet send a sample
 * per wall second, and the webhook receiver's signature check.
 *
 * The simulation runs at speed 60 (a sample per wall second), so sensor
 * noise moves between samples; the rate-of-change tolerance is scaled by
 * the same factor, since telemetry is stamped with wall time.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { verifyWebhookSignature } from '../../notify/index.ts';
import type { Receiver } from '../../notify/test-receiver.ts';
import type { AlertEvent } from '../../protocol/index.ts';
import { ADMIN_TOKEN } from './platform.ts';
import type { ProcessTestBed } from './process-bed.ts';

export const WEBHOOK_SECRET = 'webhook-secret-0123456789';
export const FLAP_SECONDS = 2;

export const RULES = {
  flapWindowSeconds: FLAP_SECONDS,
  rules: [
    {
      id: 'battery-overheat',
      severity: 'critical',
      subject: 'device',
      filter: { deviceTypes: ['battery'] },
      summary: 'Battery {subjectId} at {value} °C',
      threshold: { metric: 'tempC', above: 55, forSeconds: 2, clearBelow: 50 },
    },
    {
      id: 'soc-implausible-change',
      severity: 'warning',
      subject: 'device',
      filter: { deviceTypes: ['battery'] },
      summary: 'SoC of {subjectId} moves {value} %/min',
      rateOfChange: { metric: 'socPct', powerMetric: 'powerW', capacityMetric: 'capacityWh', tolerance: 90, slackPerMinute: 0, noise: 0.5 },
    },
    {
      id: 'meter-voltage-frozen',
      severity: 'warning',
      subject: 'device',
      filter: { deviceTypes: ['meter'], siteIds: ['site-0001'] },
      summary: 'Voltage of {subjectId} stuck at {value} V',
      frozen: { metric: 'voltageV', forSeconds: 5 },
    },
    { id: 'device-offline', severity: 'warning', subject: 'device', summary: '{subjectId} offline', offline: { forSeconds: 3 } },
    { id: 'device-stale', severity: 'warning', subject: 'device', summary: '{subjectId} silent', stale: { forSeconds: 0 } },
  ],
};

export interface AlertView {
  id: string;
  ruleId: string;
  subjectId: string;
  state: string;
  resolvedBy: string | null;
  transitions: Array<{ kind: string; actor: string }>;
}

export function verifiedEvents(receiver: Receiver): AlertEvent[] {
  return receiver.requests.map((request) => {
    const verdict = verifyWebhookSignature({
      secret: WEBHOOK_SECRET,
      timestamp: String(request.headers['x-vpp-timestamp']),
      body: request.body,
      signature: String(request.headers['x-vpp-signature']),
      nowMs: request.atMs,
    });
    expect(verdict, `signature of ${request.body.slice(0, 120)}`).toMatchObject({ ok: true });
    const event = JSON.parse(request.body) as AlertEvent;
    expect(request.headers['x-vpp-event-id']).toBe(event.eventId);
    return event;
  });
}

/** The environment of `vpp up` with the test rules, the webhook at `receiver` and a sample per wall second. */
export async function alertTestEnv(bed: ProcessTestBed, extra: Record<string, string>, receiver: Receiver) {
  const rulesFile = join(bed.dataDir, 'rules.json');
  writeFileSync(rulesFile, JSON.stringify(RULES));
  const { env, mqttPort, httpPort } = await bed.env({
    VPP_ALERT_RULES: rulesFile,
    VPP_ALERT_WEBHOOK_URL: `${receiver.url}/hook`,
    VPP_ALERT_WEBHOOK_SECRET: WEBHOOK_SECRET,
    VPP_DEVICE_INTERVAL_MS: '1000',
    VPP_ALERT_STARTUP_GRACE_SECONDS: '4',
    VPP_STALE_AFTER_INTERVALS: '2',
    VPP_SIM_SPEED: '60',
    VPP_SIM_INTERVAL_MS: '60000',
    ...extra,
  });
  const api = `http://127.0.0.1:${httpPort}/api/v1`;
  const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
  return { env, mqttPort, api, headers };
}

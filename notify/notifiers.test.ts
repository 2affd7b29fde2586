/** The Notifier contract (notifier.contract.ts), run against every HTTP adapter. */
import { createAlertmanagerNotifier, type AlertmanagerAlert } from './alertmanager.ts';
import { describeNotifierContract } from './notifier.contract.ts';
import { createPagerDutyNotifier, type PagerDutyEvent } from './pagerduty.ts';
import { createSlackNotifier, type SlackMessage } from './slack.ts';
import { createWebhookNotifier, WEBHOOK_EVENT_ID_HEADER } from './webhook.ts';

const SECRET = 'contract-test-secret-0123456789';

describeNotifierContract('webhook', {
  make: (url, { timeoutMs }) => createWebhookNotifier({ url: `${url}/hooks/vpp`, secret: SECRET, clock: Date.now, timeoutMs }),
  success: { status: 204, body: '' },
  carries: (request, event) =>
    request.path === '/hooks/vpp' &&
    request.headers[WEBHOOK_EVENT_ID_HEADER.toLowerCase()] === event.eventId &&
    (JSON.parse(request.body) as { eventId: string }).eventId === event.eventId,
});

describeNotifierContract('slack', {
  make: (url, { timeoutMs }) => createSlackNotifier({ url: `${url}/services/T000/B000/XXXX`, timeoutMs }),
  success: { status: 200, body: 'ok' },
  carries: (request, event) => {
    const message = JSON.parse(request.body) as SlackMessage;
    return request.path === '/services/T000/B000/XXXX' && message.text.includes(event.alert.summary) && JSON.stringify(message.blocks).includes(event.eventId);
  },
});

describeNotifierContract('pagerduty', {
  make: (url, { timeoutMs }) => createPagerDutyNotifier({ routingKey: 'R0123456789ABCDEF0123456789ABCDE', url: `${url}/v2/enqueue`, source: 'vpp-test', timeoutMs }),
  success: { status: 202, body: '{"status":"success","message":"Event processed","dedup_key":"vpp-alert-42"}' },
  carries: (request, event) => {
    const body = JSON.parse(request.body) as PagerDutyEvent;
    return request.path === '/v2/enqueue' && body.dedup_key === `vpp-alert-${event.alert.id}` && body.event_action === 'trigger';
  },
});

describeNotifierContract('alertmanager', {
  make: (url, { timeoutMs }) => createAlertmanagerNotifier({ url, resendIntervalMs: 60_000, timeoutMs }),
  success: { status: 200, body: '' },
  carries: (request, event) => {
    const alerts = JSON.parse(request.body) as AlertmanagerAlert[];
    return request.path === '/api/v2/alerts' && alerts.length === 1 && alerts[0]?.labels.alert_id === event.alert.id;
  },
});


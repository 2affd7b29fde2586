/**
 * The Slack message checked against a schema of what Slack documents for
 * incoming webhooks and Block Kit (limits cited per field). A message that
 * passes here is one Slack accepts rather than answering 400
 * invalid_blocks / invalid_payload.
 */
import type { TSchema } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { ALERT_TRANSITION_KINDS } from '../protocol/index.ts';
import { buildSlackMessage, escapeMrkdwn } from './slack.ts';
import { makeEvent } from './test-fixtures.ts';
import { formatErrors, SlackIncomingWebhookMessage } from './test-formats.ts';

function expectValid(schema: TSchema, value: unknown): void {
  expect(formatErrors(schema, value)).toEqual([]);
}

describe('Slack message', () => {
  for (const kind of ALERT_TRANSITION_KINDS) {
    it(`${kind}: matches Slack's documented incoming-webhook format`, () => {
      expectValid(SlackIncomingWebhookMessage, buildSlackMessage(makeEvent(kind)));
    });
  }

  it('stays within every limit with oversized fields', () => {
    const huge = 'é🔥<&>'.repeat(2_000);
    const event = makeEvent('resolved', { summary: huge, ruleId: `rule-${'r'.repeat(3_000)}`, subjectId: 'd'.repeat(3_000) });
    event.transition.note = huge;
    event.transition.actor = 'ops';
    const message = buildSlackMessage(event);
    expectValid(SlackIncomingWebhookMessage, message);
    // Surrogate pairs are not split by the cuts: every string is well formed (encodeURIComponent throws on a lone
    // surrogate; on the JSON text it could not, since JSON.stringify escapes lone surrogates).
    expect(() => JSON.stringify(message, (_key, value: unknown) => (typeof value === 'string' ? encodeURIComponent(value) : value))).not.toThrow();
  });

  it('has the header, the summary section, the fields and the time', () => {
    const event = makeEvent('acknowledged');
    const message = buildSlackMessage(event);
    expect(message.text).toBe('[CRITICAL] Acknowledged: Battery bat-0001 at 61.5 °C (limit 55 °C) (device bat-0001)');
    const [header, summary, fields, context] = message.blocks;
    expect(header).toEqual({ type: 'header', text: { type: 'plain_text', text: `Acknowledged: ${event.alert.summary}`, emoji: true } });
    expect(summary).toMatchObject({ type: 'section', text: { type: 'mrkdwn' } });
    expect(JSON.stringify(summary)).toContain('Acknowledged by ops@example.com');
    expect(JSON.stringify(summary)).toContain('> looking');
    expect(fields).toEqual({
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: '*Severity*\ncritical' },
        { type: 'mrkdwn', text: '*Subject*\ndevice bat-0001' },
        { type: 'mrkdwn', text: '*State*\nacknowledged' },
        { type: 'mrkdwn', text: '*Rule*\nbattery-overtemp' },
        { type: 'mrkdwn', text: '*Value*\n61.5' },
      ],
    });
    const seconds = Math.floor(event.transition.atMs / 1000);
    expect(context).toEqual({
      type: 'context',
      elements: [
        { type: 'mrkdwn', text: `<!date^${seconds}^{date_short_pretty} {time_secs}|${new Date(event.transition.atMs).toISOString()}> · alert 42 · event ${event.eventId}` },
      ],
    });
  });

  it('escapes &, < and > so alert text cannot inject links or mentions', () => {
    expect(escapeMrkdwn('<!channel> & <https://evil|click>')).toBe('&lt;!channel&gt; &amp; &lt;https://evil|click&gt;');
    const message = buildSlackMessage(makeEvent('fired', { summary: '<!channel> hot' }));
    expect(JSON.stringify(message.blocks[1])).toContain('&lt;!channel&gt; hot');
  });
});

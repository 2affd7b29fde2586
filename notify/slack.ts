/**
 * Slack incoming webhook: one message per transition, in the format Slack
 * documents for incoming webhooks: a top-level `text` (the notification
 * and fallback text, always present) and Block Kit `blocks`:
 *
 * - header (plain_text, at most 150 characters): state and summary;
 * - section (mrkdwn, at most 3000 characters): the summary and, for an
 *   acknowledgement or an operator's resolution, who and why;
 * - section of fields (at most 10, each at most 2000 characters): severity,
 *   subject, state, rule, value;
 * - context: the transition's time, shown in the reader's time zone.
 *
 * Slack answers 200 `ok`; 429 with Retry-After when rate limited; 400
 * `invalid_payload`, 403 `action_prohibited`, 404 `no_service`, 410
 * `channel_is_archived` refuse the request for good (not retried).
 * Incoming webhooks have no dedup: a repeat after a crash shows twice, so
 * the event id is in the context line for a reader to tell.
 */
import type { AlertEvent, AlertTransitionKind } from '../protocol/index.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, postJson } from './http.ts';
import { truncate } from './text.ts';
import type { Clock, HttpNotifierOptions, Notifier } from './types.ts';

export const SLACK_HEADER_MAX_CHARS = 150;
export const SLACK_SECTION_MAX_CHARS = 3000;
export const SLACK_FIELD_MAX_CHARS = 2000;
/** The top-level text is a notification line; Slack truncates longer ones anyway. */
export const SLACK_TEXT_MAX_CHARS = 3000;

export interface SlackText {
  type: 'plain_text' | 'mrkdwn';
  text: string;
  emoji?: boolean;
}

export type SlackBlock =
  | { type: 'header'; text: SlackText & { type: 'plain_text' } }
  | { type: 'section'; text: SlackText }
  | { type: 'section'; fields: SlackText[] }
  | { type: 'context'; elements: SlackText[] };

export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

export interface SlackNotifierOptions extends HttpNotifierOptions {
  /** The incoming webhook's URL (a secret: never logged). */
  url: string;
  /** For Retry-After given as a date. Default Date.now. */
  clock?: Clock;
}

const HEADLINE: Record<AlertTransitionKind, string> = {
  fired: 'Firing',
  reopened: 'Firing again',
  acknowledged: 'Acknowledged',
  resolved: 'Resolved',
};

const ICON: Record<AlertTransitionKind, string> = {
  fired: ':rotating_light:',
  reopened: ':rotating_light:',
  acknowledged: ':eyes:',
  resolved: ':white_check_mark:',
};

export function buildSlackMessage(event: AlertEvent): SlackMessage {
  const { alert, transition } = event;
  const headline = HEADLINE[transition.kind];
  const severity = alert.severity.toUpperCase();
  const subject = `${alert.subjectKind} ${alert.subjectId}`;
  const lines = [`${ICON[transition.kind]} *${escapeMrkdwn(headline)}* ${escapeMrkdwn(alert.summary)}`];
  if (transition.kind === 'acknowledged') lines.push(`Acknowledged by ${escapeMrkdwn(transition.actor)}`);
  if (transition.kind === 'resolved') lines.push(transition.actor === 'rule' ? 'The condition cleared.' : `Resolved by ${escapeMrkdwn(transition.actor)}`);
  if (transition.note !== null && transition.note !== '') lines.push(`> ${escapeMrkdwn(transition.note).replace(/\n/g, '\n> ')}`);
  const seconds = Math.floor(transition.atMs / 1000);
  const iso = new Date(transition.atMs).toISOString();
  return {
    text: truncate(`[${severity}] ${headline}: ${alert.summary} (${subject})`, SLACK_TEXT_MAX_CHARS),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: truncate(`${headline}: ${alert.summary}`, SLACK_HEADER_MAX_CHARS), emoji: true } },
      { type: 'section', text: { type: 'mrkdwn', text: truncate(lines.join('\n'), SLACK_SECTION_MAX_CHARS) } },
      {
        type: 'section',
        fields: [
          field('Severity', alert.severity),
          field('Subject', subject),
          field('State', alert.state),
          field('Rule', alert.ruleId),
          field('Value', alert.value === null ? '–' : String(alert.value)),
        ],
      },
      {
        type: 'context',
        // <!date^…^…|fallback> renders in the reader's time zone; the fallback is for clients that cannot.
        elements: [{ type: 'mrkdwn', text: `<!date^${seconds}^{date_short_pretty} {time_secs}|${iso}> · alert ${escapeMrkdwn(alert.id)} · event ${escapeMrkdwn(event.eventId)}` }],
      },
    ],
  };
}

export function createSlackNotifier(options: SlackNotifierOptions): Notifier {
  const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const clock = options.clock ?? Date.now;
  return {
    name: 'slack',
    deliver(event, signal) {
      return postJson({ url: options.url, body: JSON.stringify(buildSlackMessage(event)), timeoutMs, signal, nowMs: clock });
    },
  };
}

function field(name: string, value: string): SlackText {
  return { type: 'mrkdwn', text: truncate(`*${name}*\n${escapeMrkdwn(value)}`, SLACK_FIELD_MAX_CHARS) };
}

/** Slack's mrkdwn treats &, < and > as control characters; everything else from an alert is shown as it is. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

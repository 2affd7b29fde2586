/**
 * /api/v1/alerts: alerts raised by the rules, newest first, and an
 * operator's acknowledgement and resolution; /api/v1/alert-rules and
 * /api/v1/alert-deliveries: the configured rules and routes, and how
 * notifications are getting out.
 */
import type { TSchema } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { AlertEvent } from '../../protocol/index.ts';
import type { ControlPlugin } from '../type-provider.ts';
import { acknowledgeAlert } from '../commands/acknowledge-alert.ts';
import { resolveAlert } from '../commands/resolve-alert.ts';
import { operatorOf } from '../plugins/auth.ts';
import { presentAlert } from '../presenters/alert.ts';
import { queryAlert, queryAlertDeliveries, queryAlertRules, queryAlerts } from '../queries/alerts.ts';
import {
  AcknowledgeAlertBodySchema,
  AlertDeliveriesSchema,
  AlertIdParamsSchema,
  AlertListQuerySchema,
  AlertPageSchema,
  AlertRulesSchema,
  AlertSchema,
  AlertWithTransitionsSchema,
  MAX_ALERT_NOTE_CHARS,
  ResolveAlertBodySchema,
} from '../schemas/alerts.ts';
import { SMALL_BODY_LIMIT_BYTES } from '../schemas/access.ts';
import { BEARER_SECURITY, errorResponses } from '../schemas/common.ts';

export const alertRoutes: ControlPlugin = async (app, { deps }) => {
  // Acknowledging needs no body, and clients send none in two ways: no body at
  // all, or an empty one labelled JSON (which fastify's own parser refuses).
  // Both count as `{}`; this parser is scoped to these routes.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text === '') done(null, {});
    else parseJson(request, text, done);
  });
  const bodyOrEmpty = async (request: FastifyRequest) => {
    request.body ??= {};
  };

  app.get(
    '/alerts',
    {
      schema: {
        tags: ['alerts'],
        summary: 'Alerts, newest first',
        description: '`state=open` lists firing and acknowledged alerts. Filters combine; page with `before` (the `next` of the previous page).',
        security: BEARER_SECURITY,
        querystring: AlertListQuerySchema,
        response: { 200: AlertPageSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { state, severity, subject, rule, limit = 100, before } = request.query;
      return queryAlerts(deps, { limit, state, severity, subjectId: subject, ruleId: rule, before });
    },
  );

  app.get(
    '/alerts/:id',
    {
      schema: {
        tags: ['alerts'],
        summary: 'An alert with its transitions',
        security: BEARER_SECURITY,
        params: AlertIdParamsSchema,
        response: { 200: AlertWithTransitionsSchema, ...errorResponses(401, 404) },
      },
    },
    async (request) => queryAlert(deps, request.params.id),
  );

  /** The options of a transition (ack, resolve): same params, body limit, answers and empty-body handling. */
  const transition = <Body extends TSchema>(summary: string, description: string, body: Body) => ({
    bodyLimit: SMALL_BODY_LIMIT_BYTES,
    schema: {
      tags: ['alerts'],
      summary,
      description,
      security: BEARER_SECURITY,
      params: AlertIdParamsSchema,
      body,
      response: { 200: AlertSchema, ...errorResponses(400, 401, 404, 409, 413) },
    },
    preValidation: bodyOrEmpty,
  });
  const answer = (request: FastifyRequest, event: AlertEvent, done: string) => {
    request.log.info({ alertId: event.alert.id, actor: event.transition.actor }, done);
    return presentAlert(event.alert);
  };

  app.post(
    '/alerts/:id/ack',
    transition(
      'Acknowledge a firing alert',
      `Firing → acknowledged, with an optional \`note\` (at most ${MAX_ALERT_NOTE_CHARS} characters); the body may be empty. Answers the alert after the transition. An alert already acknowledged or resolved answers 409.`,
      AcknowledgeAlertBodySchema,
    ),
    async (request) =>
      answer(request, acknowledgeAlert(deps, { id: request.params.id, actor: operatorOf(request), note: request.body.note }, request.log), 'alert acknowledged'),
  );

  app.post(
    '/alerts/:id/resolve',
    transition(
      'Resolve an open alert',
      `Firing or acknowledged → resolved, with a required \`reason\` (1 to ${MAX_ALERT_NOTE_CHARS} characters). Answers the alert after the transition. An alert already resolved answers 409. The rule must see its condition clear and hold again before it raises a new alert.`,
      ResolveAlertBodySchema,
    ),
    async (request) =>
      answer(request, resolveAlert(deps, { id: request.params.id, actor: operatorOf(request), reason: request.body.reason }, request.log), 'alert resolved'),
  );

  app.get(
    '/alert-rules',
    {
      schema: {
        tags: ['alerts'],
        summary: 'The alert rules and notification routes, as configured',
        security: BEARER_SECURITY,
        response: { 200: AlertRulesSchema, ...errorResponses(401) },
      },
    },
    async () => queryAlertRules(deps),
  );

  app.get(
    '/alert-deliveries',
    {
      schema: {
        tags: ['alerts'],
        summary: 'Notification deliveries by integration and state',
        security: BEARER_SECURITY,
        response: { 200: AlertDeliveriesSchema, ...errorResponses(401) },
      },
    },
    async () => queryAlertDeliveries(deps),
  );
};

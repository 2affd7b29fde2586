/**
 * Errors of the control API. Every error reaches the client as JSON
 * `{ code, message }` with a status chosen here; nothing else (no stack, no
 * cause) leaves the process.
 */
import { StoreError, type StoreErrorCode } from '../store/types.ts';
import type { DispatchPlan } from './deps.ts';

export type ControlErrorCode =
  | 'bad-request'
  | 'unauthorized'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'payload-too-large'
  | 'unsupported-media-type'
  | 'too-many-requests'
  | 'revocation-not-delivered'
  | 'unavailable'
  | 'internal'
  /** Raised at boot only (bad ControlDeps), never sent to a client. */
  | 'invalid-config';

const STATUS_BY_CODE: Record<ControlErrorCode, number> = {
  'bad-request': 400,
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  'too-many-requests': 429,
  'revocation-not-delivered': 502,
  unavailable: 503,
  internal: 500,
  'invalid-config': 500,
};

/** An error whose message is meant for the operator calling the API. */
export class ControlError extends Error {
  readonly code: ControlErrorCode;
  readonly statusCode: number;
  constructor(code: ControlErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ControlError';
    this.code = code;
    this.statusCode = STATUS_BY_CODE[code];
  }
}

export function badRequest(message: string): ControlError {
  return new ControlError('bad-request', message);
}

export function notFound(message: string): ControlError {
  return new ControlError('not-found', message);
}

export function conflict(message: string): ControlError {
  return new ControlError('conflict', message);
}

const CONTROL_CODE_BY_STORE_CODE: Record<StoreErrorCode, ControlErrorCode> = {
  'not-found': 'not-found',
  conflict: 'conflict',
  invalid: 'bad-request',
  unavailable: 'unavailable',
};

/** Maps a storage error to the API error an operator sees; the store's message is meant for operators too. */
export function fromStoreError(err: StoreError): ControlError {
  return new ControlError(CONTROL_CODE_BY_STORE_CODE[err.code], err.message, { cause: err });
}

export function isStoreError(err: unknown): err is StoreError {
  if (err instanceof StoreError) return true;
  // A second copy of the store module (another bundle, another loader) has its own class.
  if (!(err instanceof Error) || err.name !== 'StoreError') return false;
  const code: unknown = (err as Error & { code?: unknown }).code;
  return typeof code === 'string' && code in CONTROL_CODE_BY_STORE_CODE;
}

/**
 * Thrown by a Dispatcher's `create` when the fleet cannot meet the target
 * and the request did not allow a partial dispatch; nothing was stored. The
 * API answers 409 with the plan, so the operator sees what the fleet could
 * do and can retry with allowPartial or a smaller target.
 */
export class InfeasibleDispatchError extends Error {
  readonly code = 'infeasible';
  readonly plan: DispatchPlan;
  constructor(plan: DispatchPlan, options?: { cause?: unknown }) {
    super(plan.explanation, options);
    this.name = 'InfeasibleDispatchError';
    this.plan = plan;
  }
}

export function isInfeasibleDispatchError(err: unknown): err is InfeasibleDispatchError {
  if (err instanceof InfeasibleDispatchError) return true;
  // The dispatcher may come from another copy of this module (another bundle, another loader).
  if (!(err instanceof Error) || err.name !== 'InfeasibleDispatchError') return false;
  const { code, plan } = err as Error & { code?: unknown; plan?: unknown };
  return code === 'infeasible' && plan !== null && typeof plan === 'object';
}

/**
 * A page read from the store with a `before` cursor: the other values were
 * checked by the schema, so what the store can still refuse ('invalid') is
 * a cursor it did not make, which is the client's 400.
 */
export function readPage<T>(before: string | undefined, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (isStoreError(err) && err.code === 'invalid' && before !== undefined) throw badRequest('before: is not the `next` of a previous page');
    throw err;
  }
}

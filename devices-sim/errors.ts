/** Errors of the simulator: a machine-readable code, a message, and the cause when there is one. */

export type SimErrorCode = 'invalid-options' | 'connect-failed' | 'unknown-device';

export class SimError extends Error {
  readonly code: SimErrorCode;
  constructor(code: SimErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SimError';
    this.code = code;
  }
}

/** Errors raised by the broker. Each carries a code an operator can count or match on. */
export type BrokerErrorCode =
  | 'invalid-options'
  | 'listen-failed'
  | 'publish-not-authorized'
  | 'tap-refused';

export class BrokerError extends Error {
  readonly code: BrokerErrorCode;
  constructor(code: BrokerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BrokerError';
    this.code = code;
  }
}

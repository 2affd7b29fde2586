export * from './topics.ts';
export * from './metrics.ts';
export * from './messages.ts';
export * from './codec.ts';
export * from './checks.ts';
export * from './alerts.ts';
export * from './alert-rules.ts';
export * from './commands.ts';

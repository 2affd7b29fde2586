/** Commands and dispatch: the command sender (queue → MQTT, acks → queue), the allocator and the control loop. */
export {
  DEFAULT_COMMAND_SENDER_SETTINGS,
  commandPayload,
  nextRetryDelayMs,
  startCommandSender,
  type CommandSender,
  type CommandSenderCounters,
  type CommandSenderOptions,
  type CommandSenderSettings,
} from './command-sender.ts';

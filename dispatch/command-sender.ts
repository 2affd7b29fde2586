/**
 * The command sender: takes the commands of the queue (CommandStore) to the
 * devices over MQTT and applies their acks, so that every command reaches a
 * known fate.
 *
 * Each cycle (every `pollMs`, or at once after `wake()`):
 * 1. expiry: pending or sent commands whose expiry passed become expired;
 *    accepted ones whose completion ack never came become completed after
 *    `completionGraceMs`;
 * 2. sending: every due command (pending, or sent with no answer yet and
 *    its backoff over) is published at QoS 1 on the device's commands topic
 *    **only while the device is connected** (its presence in the twin): a
 *    device's session is clean, so a command published while it is away
 *    would be dropped by the broker, and "sent" must mean it reached a
 *    connected device. For an absent device the command waits, not
 *    counting a try, and goes out within a cycle of the device coming back.
 *    Once the broker has acknowledged the publish (PUBACK), the command is
 *    marked sent with its next attempt after a backoff (doubling from
 *    `firstRetryMs` up to `maxRetryMs`). After `maxAttempts` sends without
 *    an answer it fails.
 *
 * Acks (`handleAck`, from the acks subscription) are decoded and applied
 * once; the store ignores repeats, acks for final commands and acks from
 * another device than the command's. Malformed acks are counted.
 *
 * A restart loses nothing: the queue is the store. A command published just
 * before a crash and not yet marked sent is published again after the
 * restart with the same id; a device ignores an id it has already seen
 * (it answers with the state it reached), so nothing runs twice.
 *
 * Lifecycle: `stop()` ends the cycles and waits for the one in progress.
 */
import type { Logger } from 'pino';
import { decodeAck, deviceTopic, encodeJson, type Command } from '../protocol/index.ts';
import type { CommandStore, Presence, StoredCommand, TwinStore } from '../store/types.ts';

export interface CommandSenderSettings {
  pollMs: number;
  /** Wait before the first resend of a command the device has not answered. */
  firstRetryMs: number;
  maxRetryMs: number;
  /** Sends to a connected device without an answer before the command fails. */
  maxAttempts: number;
  /** An accepted command past its expiry by this much, with no completion ack, is taken as completed. */
  completionGraceMs: number;
  /** Most commands sent per cycle. */
  batchSize: number;
}

export const DEFAULT_COMMAND_SENDER_SETTINGS: CommandSenderSettings = {
  pollMs: 250,
  firstRetryMs: 2_000,
  maxRetryMs: 60_000,
  maxAttempts: 10,
  completionGraceMs: 60_000,
  batchSize: 500,
};

export interface CommandSenderCounters {
  sent: number;
  resent: number;
  /** Due commands held back because their device was not connected (per cycle and command). */
  heldForOfflineDevice: number;
  publishFailures: number;
  acksApplied: number;
  /** Acks that changed nothing: repeats, for final or unknown commands, or from another device. */
  acksIgnored: number;
  acksInvalid: number;
  expired: number;
  completedWithoutAck: number;
  failed: number;
  storeErrors: number;
}

export interface CommandSenderOptions {
  commands: CommandStore;
  twins: Pick<TwinStore, 'listDeviceStates'>;
  /** Publishes at QoS 1, not retained; resolves once the broker acknowledged it. */
  publish(topic: string, payload: Buffer): Promise<void>;
  clock: () => number;
  logger: Logger;
  settings?: Partial<CommandSenderSettings>;
  /** Told of every command whose state changed (sent, acked, expired, failed). */
  onChange?(command: StoredCommand): void;
}

export interface CommandSender {
  /** A command was created in this process: send it now rather than at the next poll. */
  wake(): void;
  /** Runs a cycle now (after the one in progress) and resolves when it is done: for tests and shutdown. */
  cycleNow(): Promise<void>;
  /** An ack arrived on `vpp/v1/devices/{deviceId}/acks`. */
  handleAck(deviceId: string, payload: Buffer): void;
  counters(): CommandSenderCounters;
  stop(): Promise<void>;
}

/** Backoff before the next resend after `attempts` sends. */
export function nextRetryDelayMs(attempts: number, settings: Pick<CommandSenderSettings, 'firstRetryMs' | 'maxRetryMs'>): number {
  return Math.min(settings.maxRetryMs, settings.firstRetryMs * 2 ** Math.max(0, attempts - 1));
}

/** The wire form of a stored command. */
export function commandPayload(command: StoredCommand): Command {
  return { id: command.id, type: command.type, params: command.params, expiresAt: command.expiresAtMs };
}

export function startCommandSender(options: CommandSenderOptions): CommandSender {
  const settings: CommandSenderSettings = { ...DEFAULT_COMMAND_SENDER_SETTINGS, ...options.settings };
  const { commands, clock } = options;
  const logger = options.logger.child({ component: 'command-sender' });
  const counters: CommandSenderCounters = {
    sent: 0,
    resent: 0,
    heldForOfflineDevice: 0,
    publishFailures: 0,
    acksApplied: 0,
    acksIgnored: 0,
    acksInvalid: 0,
    expired: 0,
    completedWithoutAck: 0,
    failed: 0,
    storeErrors: 0,
  };
  const changed = (command: StoredCommand | undefined) => {
    if (command) options.onChange?.(command);
  };
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  let again = false;

  const presenceOf = (deviceIds: readonly string[]): Map<string, Presence> =>
    new Map(options.twins.listDeviceStates(deviceIds).map((state) => [state.deviceId, state.presence]));

  async function cycle(): Promise<void> {
    const nowMs = clock();
    try {
      for (const command of commands.expireCommands(nowMs, settings.completionGraceMs)) {
        if (command.state === 'expired') counters.expired++;
        else counters.completedWithoutAck++;
        changed(command);
      }
      const due = commands.dueCommands(nowMs, settings.batchSize);
      if (due.length === 0) return;
      const presence = presenceOf([...new Set(due.map((c) => c.deviceId))]);
      await Promise.all(
        due.map(async (command) => {
          if (command.attempts >= settings.maxAttempts) {
            counters.failed++;
            changed(commands.failCommand(command.id, { atMs: clock(), reason: `no answer after ${command.attempts} sends` }));
            return;
          }
          if ((presence.get(command.deviceId) ?? 'offline') === 'offline') {
            counters.heldForOfflineDevice++;
            return;
          }
          try {
            await options.publish(deviceTopic(command.deviceId, 'commands'), encodeJson(commandPayload(command)));
          } catch (error) {
            counters.publishFailures++;
            logger.warn({ err: error, commandId: command.id }, 'publishing a command failed; it is sent again at the next cycle');
            return;
          }
          const atMs = clock();
          const marked = commands.markSent(command.id, { atMs, nextAttemptAtMs: atMs + nextRetryDelayMs(command.attempts + 1, settings) });
          if (marked) {
            if (command.attempts === 0) counters.sent++;
            else counters.resent++;
            changed(marked);
          }
        }),
      );
    } catch (error) {
      counters.storeErrors++;
      logger.warn({ err: error }, 'the command queue could not be read or written; retried at the next cycle');
    }
  }

  function schedule(delayMs: number): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(run, delayMs);
  }

  function run(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = cycle().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        schedule(0);
      } else schedule(settings.pollMs);
    });
  }

  schedule(0);
  return {
    wake: () => schedule(0),
    async cycleNow() {
      while (running) await running;
      if (stopped) return;
      clearTimeout(timer);
      running = cycle().finally(() => {
        running = undefined;
        schedule(settings.pollMs);
      });
      await running;
    },
    handleAck(deviceId, payload) {
      const decoded = decodeAck(payload);
      if (!decoded.ok) {
        counters.acksInvalid++;
        return;
      }
      try {
        const command = commands.applyAck(deviceId, decoded.value, clock());
        if (command) {
          counters.acksApplied++;
          changed(command);
        } else counters.acksIgnored++;
      } catch (error) {
        counters.storeErrors++;
        // The device sends the ack again only if the broker did not take it; the
        // command stays unanswered and is resent, and the device answers the resend.
        logger.warn({ err: error, deviceId }, 'an ack could not be stored; the resend will be answered again');
      }
    },
    counters: () => ({ ...counters }),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/**
 * Fleet dispatch, the closed loop: one correction step, pure. The caller
 * runs it periodically during a dispatch with the batteries' latest state
 * and the command in force for each dispatched battery, sends the
 * setpoints it returns, and records them as the new `current`.
 *
 * Sign convention as in allocator.ts: positive = discharge (delivered to
 * the grid), negative = charge. Internally every ask is a magnitude in the
 * target's direction; a battery is never asked to run against the target.
 */
import type { CommandState } from '../protocol/commands.ts';
import { formatPowerW, headroom, spreadProportionally, type BatteryView, type Setpoint } from './allocator.ts';

/** The command states a dispatched battery can be in (`pending` is the sender's business). */
export type DispatchCommandState = Exclude<CommandState, 'pending'>;

/** The `setPower` in force (or last sent) for one dispatched battery. */
export interface CurrentSetpoint {
  deviceId: string;
  powerW: number;
  state: DispatchCommandState;
}

export interface CorrectionRequest {
  /** The dispatch's target; positive = deliver (discharge), negative = absorb (charge). */
  targetW: number;
  /** Time left in the dispatch window: headrooms are for holding a power until its end. */
  remainingMs: number;
  /** The fleet's batteries, dispatched or not: the loop may add batteries to the dispatch. */
  batteries: readonly BatteryView[];
  /** One entry per dispatched battery (the first entry for a deviceId counts). */
  current: readonly CurrentSetpoint[];
  /** Under-delivery within this many watts is noise: no correction for it. */
  toleranceW: number;
  /** Share of the measured under-delivery added to the asks (default 1: all of it). */
  gain?: number;
  /** Smallest change worth a new command (default DEFAULT_MIN_CHANGE_W); see `changeThresholdW`. */
  minChangeW?: number;
}

export interface Correction {
  /** New setpoints, only for batteries whose ask changes; powerW 0 takes a battery out. */
  setpoints: Setpoint[];
  /** Sum of the measured powers of the dispatched batteries that are online and report one. */
  measuredW: number;
  /** targetW − measuredW. */
  errorW: number;
  /** Share of the target (0..1) asked of batteries that accepted their command and report a power. */
  confidence: number;
  /** Why the setpoints changed (or did not), in plain words, for logs and the API. */
  reasons: string[];
}

export const DEFAULT_MIN_CHANGE_W = 50;

/**
 * A new setpoint is sent only when the ask moves by more than this:
 * max(minChangeW, 1 % of the battery's power limit). A battery follows a
 * setpoint only to within its own accuracy anyway, and every command costs
 * a round trip and a state change on the device.
 */
export function changeThresholdW(battery: BatteryView, minChangeW: number = DEFAULT_MIN_CHANGE_W): number {
  const limitW = Number.isFinite(battery.maxPowerW) ? Math.max(0, battery.maxPowerW) : 0;
  return Math.max(minChangeW, limitW / 100);
}

const ACTIVE_STATES: readonly DispatchCommandState[] = ['sent', 'accepted'];

const STATE_WORDS: Record<DispatchCommandState, string> = {
  sent: 'has not answered yet',
  accepted: 'accepted',
  rejected: 'rejected its command',
  expired: 'let its command expire unanswered',
  failed: 'could not be reached',
  completed: 'completed its command',
};

/** A battery the step may ask something of: dispatched and still able, or new. */
interface Slot {
  battery: BatteryView;
  /** The setpoint in force, signed (0 for a battery not in the dispatch yet). */
  oldW: number;
  /** The ask after taking out what the battery can no longer hold, magnitude in the target's direction. */
  askW: number;
  headroomW: number;
  /** The ask must change whatever the hysteresis: it was above the headroom or against the target. */
  forced: boolean;
  /** Accepted its command and reports a power: its measurement says how the fleet follows. */
  following: boolean;
}

/**
 * One correction step.
 *
 * 1. Dispatched batteries that are offline, stale or unknown are taken out
 *    (asked 0 W, in case they still run the old setpoint when they come
 *    back); those whose command was rejected, failed, expired or completed
 *    are no longer counted on (their command is over; no new one). The
 *    others keep their ask, reduced to their headroom for the remaining
 *    window (a battery nearing its reserve or full is asked less), and 0
 *    if it was against the target.
 * 2. The total to ask is the target plus gain × the measured
 *    under-delivery, counted only when its magnitude is beyond toleranceW.
 *    The under-delivery is Σ (ask − measured) over the batteries that
 *    accepted and report, in the target's direction: how much less than
 *    asked the following batteries deliver. It is measured against each
 *    battery's own ask, not as targetW − measuredW, for two reasons:
 *    targetW − measuredW also contains the asks of batteries that just
 *    dropped out (re-spread in full already: counting them again would
 *    ask for them twice) and of batteries that have not accepted yet
 *    (not under-delivery, only a delay); and once the asks carry the
 *    correction, targetW − measuredW is near zero while the batteries
 *    still under-deliver, so a step based on it would drop the correction
 *    and the loop would swing between the two every other step. With gain
 *    1, a fleet that delivers a steady fraction ρ of what it is asked
 *    converges to asking targetW / ρ, the error shrinking by (1 − ρ) each
 *    step; a gain below 1 damps the step but leaves part of the
 *    under-delivery uncorrected for good (gain 0.5 and ρ = 0.9 settle at
 *    about 95 % of the target).
 * 3. The difference between that total and what the remaining batteries
 *    are asked (the shortfall of the dropped ones plus the correction) is
 *    spread over the online batteries with spare headroom, dispatched or
 *    not (but not those whose command is over), in proportion to their
 *    spare headroom; an excess is taken off the asks in proportion to the
 *    asks. No battery is asked more than its headroom, none against the
 *    target. When the spare headroom is not enough, every battery runs at
 *    its headroom and a reason says how much is missing.
 * 4. Hysteresis: a setpoint is sent only when it moves by more than
 *    `changeThresholdW`. So that many small moves do not all vanish under
 *    it, batteries whose part of the spread would be under their threshold
 *    are left out of the spread (the smallest first) while the others can
 *    take it; what remains under every threshold is not sent. Reductions
 *    to the headroom and exits are always sent.
 *
 * `confidence` is the share of the target asked of batteries that
 * accepted and report, after the reductions of step 1 and before any new
 * ask (a new ask is not accepted yet), capped at 1; 1 for a zero target.
 *
 * Throws a RangeError for a non-finite target or remaining time, and for a
 * negative or non-finite tolerance, gain or minimum change.
 */
export function correct(request: CorrectionRequest): Correction {
  const { targetW, remainingMs, batteries, current, toleranceW } = request;
  const gain = request.gain ?? 1;
  const minChangeW = request.minChangeW ?? DEFAULT_MIN_CHANGE_W;
  if (!Number.isFinite(targetW)) throw new RangeError('targetW must be a finite number of watts');
  if (!Number.isFinite(remainingMs)) throw new RangeError('remainingMs must be a finite number of milliseconds');
  if (!Number.isFinite(toleranceW) || toleranceW < 0) throw new RangeError('toleranceW must be a non-negative number of watts');
  if (!Number.isFinite(gain) || gain < 0) throw new RangeError('gain must be a non-negative number');
  if (!Number.isFinite(minChangeW) || minChangeW < 0) throw new RangeError('minChangeW must be a non-negative number of watts');
  const sign = Math.sign(targetW);
  const targetMagW = Math.round(Math.abs(targetW));
  const reasons: string[] = [];

  const byId = new Map<string, BatteryView>();
  for (const battery of batteries) if (!byId.has(battery.deviceId)) byId.set(battery.deviceId, battery);
  const entries = new Map<string, CurrentSetpoint>();
  for (const entry of current) if (!entries.has(entry.deviceId)) entries.set(entry.deviceId, entry);

  const reports = (battery: BatteryView | undefined): battery is BatteryView & { measuredPowerW: number } =>
    battery !== undefined && battery.presence === 'online' && battery.measuredPowerW !== null && Number.isFinite(battery.measuredPowerW);

  let measuredW = 0;
  for (const entry of entries.values()) {
    const battery = byId.get(entry.deviceId);
    if (reports(battery)) measuredW += battery.measuredPowerW;
  }
  const errorW = targetW - measuredW;

  // Step 1: who stays, with what ask.
  const exits: Setpoint[] = [];
  const slots: Slot[] = [];
  let underW = 0;
  for (const entry of entries.values()) {
    const battery = byId.get(entry.deviceId);
    const active = ACTIVE_STATES.includes(entry.state);
    if (!active) {
      if (entry.powerW !== 0) reasons.push(`${entry.deviceId} ${STATE_WORDS[entry.state]}: not counted on`);
      continue;
    }
    if (battery === undefined || battery.presence !== 'online') {
      if (entry.powerW !== 0) {
        exits.push({ deviceId: entry.deviceId, powerW: 0 });
        const why = battery === undefined ? 'is no longer in the fleet' : `is ${battery.presence}`;
        reasons.push(`${entry.deviceId} ${why}: taken out, its ${formatPowerW(Math.abs(entry.powerW))} asked of others`);
      }
      continue;
    }
    const headroomW = headroom(battery, sign, remainingMs);
    const wantedW = sign === 0 ? 0 : Math.round(sign * entry.powerW);
    let askW = Math.max(0, wantedW);
    let forced = false;
    if (sign === 0 && entry.powerW !== 0) {
      forced = true;
      reasons.push(`${entry.deviceId}: the target is 0 W, set to 0 W`);
    }
    if (wantedW < 0) {
      forced = true;
      reasons.push(`${entry.deviceId} was asked ${formatPowerW(entry.powerW)}, against the target: set to 0 W`);
    }
    if (askW > headroomW) {
      reasons.push(`${entry.deviceId} can hold only ${formatPowerW(headroomW)} to the end of the window (asked ${formatPowerW(askW)}): reduced`);
      askW = headroomW;
      forced = true;
    }
    const following = entry.state === 'accepted' && reports(battery);
    if (following) underW += sign * entry.powerW - sign * battery.measuredPowerW;
    slots.push({ battery, oldW: entry.powerW, askW, headroomW, forced, following });
  }

  // Batteries not in the dispatch that could help.
  if (sign !== 0) {
    for (const battery of byId.values()) {
      if (entries.has(battery.deviceId) || battery.presence !== 'online') continue;
      const headroomW = headroom(battery, sign, remainingMs);
      if (headroomW > 0) slots.push({ battery, oldW: 0, askW: 0, headroomW, forced: false, following: false });
    }
  }

  const backedW = slots.filter((s) => s.following).reduce((sum, s) => sum + s.askW, 0);
  const confidence = targetMagW === 0 ? 1 : Math.min(1, backedW / targetMagW);

  // Step 2: the total to ask.
  let correctionW = 0;
  if (sign !== 0 && Math.abs(underW) > toleranceW) {
    correctionW = gain * underW;
    reasons.push(
      underW > 0
        ? `the batteries following deliver ${formatPowerW(underW)} less than asked (tolerance ${formatPowerW(toleranceW)}): asking ${formatPowerW(correctionW)} more than the target`
        : `the batteries following deliver ${formatPowerW(-underW)} more than asked (tolerance ${formatPowerW(toleranceW)}): asking ${formatPowerW(-correctionW)} less than the target`,
    );
  }
  const totalW = sign === 0 ? 0 : Math.max(0, Math.round(targetMagW + correctionW));

  // Step 3: spread the difference.
  const keptW = slots.reduce((sum, s) => sum + s.askW, 0);
  const thresholdsW = slots.map((s) => changeThresholdW(s.battery, minChangeW));
  // Smallest whole-watt change that passes the hysteresis.
  const minimumsW = thresholdsW.map((t) => Math.floor(t) + 1);
  const newAskW = slots.map((s) => s.askW);
  const deltaW = totalW - keptW;
  if (deltaW > 0) {
    const spareW = slots.map((s) => s.headroomW - s.askW);
    const spareTotalW = spareW.reduce((a, b) => a + b, 0);
    const extraW = spreadProportionally(deltaW, spareW, minimumsW);
    extraW.forEach((x, i) => (newAskW[i] = (newAskW[i] ?? 0) + x));
    if (spareTotalW < deltaW) reasons.push(`${formatPowerW(deltaW - spareTotalW)} short: every battery able to help is at its headroom`);
  } else if (deltaW < 0) {
    const lessW = spreadProportionally(-deltaW, newAskW, minimumsW);
    lessW.forEach((x, i) => (newAskW[i] = (newAskW[i] ?? 0) - x));
  }

  // Step 4: hysteresis.
  const setpoints: Setpoint[] = [...exits];
  let heldW = 0;
  slots.forEach((slot, i) => {
    const ask = newAskW[i] ?? 0;
    const newW = ask === 0 ? 0 : sign * ask;
    const moveW = Math.abs(newW - slot.oldW);
    if (moveW === 0) return;
    if (slot.forced || moveW > (thresholdsW[i] ?? 0)) setpoints.push({ deviceId: slot.battery.deviceId, powerW: newW });
    else heldW += sign * (newW - slot.oldW);
  });
  if (Math.abs(heldW) >= 1) reasons.push(`${formatPowerW(Math.abs(heldW))} of changes held back: each under its battery's minimum change`);
  if (setpoints.length === 0 && reasons.length === 0) reasons.push('on target within tolerance: no change');

  return { setpoints, measuredW, errorW, confidence, reasons };
}

/**
 * Fleet dispatch, the allocation: how much power each home battery is asked
 * for so that together they deliver a target over a window. Pure, no I/O:
 * the caller gathers the batteries' latest state (`BatteryView`) and sends
 * the resulting setpoints (`setPower` commands, protocol/commands.ts).
 *
 * Sign convention (as the `powerW` metric and the `setPower` command):
 * positive = discharge, delivered to the grid; negative = charge, absorbed
 * from the grid. Every figure is in whole watts once allocated.
 */

/** What the platform knows of a battery when it dispatches. */
export interface BatteryView {
  deviceId: string;
  siteId: string;
  /** From the twin: `stale` = not heard from recently, `offline` = disconnected. */
  presence: 'online' | 'stale' | 'offline';
  /** The battery's power limit, the same for charge and discharge. */
  maxPowerW: number;
  capacityWh: number;
  /** Energy stored now. */
  energyWh: number;
  /** Share of the capacity kept for backup, never discharged below. */
  reservePct: number;
  /** Latest reported power (positive = discharging); null when none. */
  measuredPowerW: number | null;
  /**
   * One-way efficiency between the grid and the cells, in (0, 1]; the same
   * for charge and discharge. Missing or out of range: DEFAULT_EFFICIENCY.
   */
  efficiency?: number;
}

/** A power each battery is asked to run at; positive = discharge. */
export interface Setpoint {
  deviceId: string;
  powerW: number;
}

/**
 * Why a battery gets no setpoint:
 * - `offline`, `stale`: it cannot be counted on to receive or follow one;
 * - `no-data`: a power limit, capacity, energy or reserve is missing or not a number;
 * - `no-power`: its power limit is zero;
 * - `at-reserve`: discharging, no energy above its reserve (or less than a watt's worth over the window);
 * - `full`: charging, no room left (or less than a watt's worth over the window);
 * - `small-share`: it could help, but its share would be under the minimum and the others cover the target without it;
 * - `duplicate`: its deviceId was listed before; the first entry counts.
 */
export type ExclusionReason = 'offline' | 'stale' | 'no-data' | 'no-power' | 'at-reserve' | 'full' | 'small-share' | 'duplicate';

export interface Exclusion {
  deviceId: string;
  reason: ExclusionReason;
}

export interface AllocationRequest {
  /** Positive: deliver to the grid (discharge); negative: absorb (charge). Rounded to whole watts. */
  targetW: number;
  /** Length of the window the power must be held for, > 0. */
  durationMs: number;
  batteries: readonly BatteryView[];
  /** Smallest setpoint worth a command (default DEFAULT_MIN_SHARE_W); smaller shares are dropped and re-spread. */
  minShareW?: number;
}

export interface Allocation {
  /** The target as asked (not rounded) and the window, echoed for `explainAllocation`. */
  targetW: number;
  durationMs: number;
  /** One per battery used, in the order of the request; |powerW| ≥ 1, its sign the target's. */
  setpoints: Setpoint[];
  /** The target is met: the setpoints sum to it, rounded to whole watts. */
  feasible: boolean;
  /** Sum of the headrooms of every usable battery (including those left out for a small share). */
  availableW: number;
  /** |target| − available when not feasible, else 0. */
  shortfallW: number;
  /** available − |target|: negative when not feasible. */
  marginW: number;
  /** Usable energy (grid side, after efficiency) − |target| × duration. */
  marginWh: number;
  devicesUsed: number;
  excluded: Exclusion[];
}

export const DEFAULT_EFFICIENCY = 0.95;
export const DEFAULT_MIN_SHARE_W = 100;

const MS_PER_HOUR = 3_600_000;

/** The efficiency used for a battery: its own when in (0, 1], else the default. */
export function efficiencyOf(battery: BatteryView): number {
  const eff = battery.efficiency;
  return eff !== undefined && Number.isFinite(eff) && eff > 0 && eff <= 1 ? eff : DEFAULT_EFFICIENCY;
}

/** Whether the figures the headroom depends on are all finite numbers. */
function hasFigures(battery: BatteryView): boolean {
  return [battery.maxPowerW, battery.capacityWh, battery.energyWh, battery.reservePct].every(Number.isFinite);
}

/**
 * Energy the battery can exchange with the grid in the target's direction,
 * grid side, in Wh (0 when `targetSign` is 0 or the figures are unusable):
 *
 * - discharge: the energy above the reserve, energyWh − reservePct % ×
 *   capacityWh (never below 0), of which only × efficiency reaches the
 *   grid: delivering E Wh draws E / efficiency Wh from the cells;
 * - charge: the room left, capacityWh − energyWh (never below 0), which
 *   takes room / efficiency Wh from the grid to fill.
 */
export function usableEnergyWh(battery: BatteryView, targetSign: number): number {
  if (!hasFigures(battery)) return 0;
  const eff = efficiencyOf(battery);
  const sign = Math.sign(targetSign);
  if (sign > 0) {
    const reserveWh = (Math.min(100, Math.max(0, battery.reservePct)) / 100) * battery.capacityWh;
    return Math.max(0, battery.energyWh - reserveWh) * eff;
  }
  if (sign < 0) return Math.max(0, battery.capacityWh - battery.energyWh) / eff;
  return 0;
}

/**
 * The most power, in whole watts (≥ 0, a magnitude), the battery can give
 * (targetSign > 0) or absorb (targetSign < 0) and hold until the end of
 * the remaining window: min(maxPowerW, usable energy / remaining hours),
 * the usable energy as `usableEnergyWh` (efficiency included). Rounded
 * down, so a battery is never asked for a fraction of a watt more than it
 * can hold. 0 for targetSign 0 and for unusable figures. With no time
 * left (remainingMs ≤ 0) only the power limit counts, if any energy is left.
 */
export function headroom(battery: BatteryView, targetSign: number, remainingMs: number): number {
  const energyWh = usableEnergyWh(battery, targetSign);
  if (energyWh <= 0 || !(battery.maxPowerW > 0)) return 0;
  const hours = remainingMs / MS_PER_HOUR;
  const holdableW = hours > 0 ? energyWh / hours : Number.POSITIVE_INFINITY;
  return Math.max(0, Math.floor(Math.min(battery.maxPowerW, holdableW)));
}

/**
 * Splits `totalW` over `weightsW` in proportion to the weights, in whole
 * watts, by largest remainder: each share is the floor of its exact share,
 * and the watts left over go one each to the largest remainders (ties to
 * the earlier entry). Exact arithmetic (BigInt), so the shares sum to
 * `totalW` exactly.
 *
 * Contract: `totalW` and the weights are whole non-negative numbers and
 * `totalW` ≤ Σ weights; then no share exceeds its weight (a weight is a
 * whole number and the exact share is at most the weight, so rounding up
 * cannot pass it).
 */
export function apportion(totalW: number, weightsW: readonly number[]): number[] {
  const total = BigInt(totalW);
  const weights = weightsW.map((w) => BigInt(w));
  const sum = weights.reduce((a, b) => a + b, 0n);
  if (sum === 0n || total === 0n) return weightsW.map(() => 0);
  const floors = weights.map((w) => (total * w) / sum);
  const remainders = weights.map((w) => (total * w) % sum);
  let left = total - floors.reduce((a, b) => a + b, 0n);
  const order = weights.map((_, i) => i).sort((a, b) => {
    const ra = remainders[a] ?? 0n;
    const rb = remainders[b] ?? 0n;
    return ra === rb ? a - b : rb > ra ? 1 : -1;
  });
  const shares = floors.map((f) => Number(f));
  for (const i of order) {
    if (left <= 0n) break;
    shares[i] = (shares[i] ?? 0) + 1;
    left -= 1n;
  }
  return shares;
}

/**
 * Spreads `amountW` (whole watts ≥ 0) over entries in proportion to their
 * weights (whole watts ≥ 0), never more than a weight; returns the shares
 * in whole watts, in the entries' order, summing to min(amountW, Σ weights).
 *
 * When the weights cannot cover the amount every entry gets its full
 * weight. Otherwise entries whose exact share would be under their
 * minimum (`minShareW`, one number or one per entry) are left out, the
 * smallest weight first, as long as the others still cover the amount;
 * dropping one raises the others' shares, so the check is repeated.
 * Termination: each pass over the entries either drops at least one or
 * ends the loop, so there are at most as many passes as entries. An entry
 * that cannot be dropped without leaving the amount uncovered keeps its
 * (small) share: covering the amount comes first.
 */
export function spreadProportionally(amountW: number, weightsW: readonly number[], minShareW: number | readonly number[] = 0): number[] {
  const weights = weightsW.map((w) => Math.max(0, Math.floor(w)));
  const amount = Math.max(0, Math.round(amountW));
  const total = weights.reduce((a, b) => a + b, 0);
  if (amount >= total) return weights;
  const minOf = (i: number): number => (typeof minShareW === 'number' ? minShareW : (minShareW[i] ?? 0));
  const kept = weights.map((w) => w > 0);
  const bySmallest = weights
    .map((_, i) => i)
    .filter((i) => kept[i])
    .sort((a, b) => (weights[a] ?? 0) - (weights[b] ?? 0) || a - b);
  let keptW = total;
  for (let dropped = true; dropped; ) {
    dropped = false;
    for (const i of bySmallest) {
      const w = weights[i] ?? 0;
      if (!kept[i]) continue;
      // share < min, compared without dividing: amount × w / keptW < min.
      if (amount * w < minOf(i) * keptW && keptW - w >= amount) {
        kept[i] = false;
        keptW -= w;
        dropped = true;
      }
    }
  }
  return apportion(
    amount,
    weights.map((w, i) => (kept[i] ? w : 0)),
  );
}

/**
 * Asks the batteries for `targetW` over `durationMs`.
 *
 * The rule: every online battery with headroom in the target's direction
 * (`headroom` over the whole window) is a candidate; the target is split
 * in proportion to the headrooms. An energy-limited battery's headroom is
 * its usable energy over the window, so proportional shares bring every
 * such battery to the same relative depletion at the end of the window,
 * none emptied early: the fleet keeps the most reserve spread over the
 * most batteries for later corrections. A share is never more than the
 * battery's headroom (they are proportional and sum to at most the total).
 * Shares under `minShareW` are dropped and re-spread as
 * `spreadProportionally` says (at most one pass per battery). When the
 * headrooms do not cover the target, every candidate runs at its headroom
 * and the result says `feasible: false` with the shortfall.
 *
 * A zero target asks nothing of anyone: no setpoints, feasible, zero
 * margins. Throws a RangeError for a non-finite target, a window that is
 * not a positive duration or a negative minimum share.
 */
export function allocate(request: AllocationRequest): Allocation {
  const { targetW, durationMs, batteries } = request;
  const minShareW = request.minShareW ?? DEFAULT_MIN_SHARE_W;
  if (!Number.isFinite(targetW)) throw new RangeError('targetW must be a finite number of watts');
  if (!Number.isFinite(durationMs) || durationMs <= 0) throw new RangeError('durationMs must be a positive number of milliseconds');
  if (!Number.isFinite(minShareW) || minShareW < 0) throw new RangeError('minShareW must be a non-negative number of watts');

  const sign = Math.sign(targetW);
  const askedW = Math.round(Math.abs(targetW));
  const excluded: Exclusion[] = [];
  const candidates: Array<{ battery: BatteryView; headroomW: number; energyWh: number }> = [];
  const seen = new Set<string>();
  for (const battery of batteries) {
    if (seen.has(battery.deviceId)) {
      excluded.push({ deviceId: battery.deviceId, reason: 'duplicate' });
      continue;
    }
    seen.add(battery.deviceId);
    if (battery.presence !== 'online') {
      excluded.push({ deviceId: battery.deviceId, reason: battery.presence });
      continue;
    }
    if (askedW === 0) continue;
    if (!hasFigures(battery)) {
      excluded.push({ deviceId: battery.deviceId, reason: 'no-data' });
      continue;
    }
    const headroomW = headroom(battery, sign, durationMs);
    if (headroomW <= 0) {
      excluded.push({ deviceId: battery.deviceId, reason: !(battery.maxPowerW > 0) ? 'no-power' : sign > 0 ? 'at-reserve' : 'full' });
      continue;
    }
    candidates.push({ battery, headroomW, energyWh: usableEnergyWh(battery, sign) });
  }

  const availableW = candidates.reduce((sum, c) => sum + c.headroomW, 0);
  const energyWh = candidates.reduce((sum, c) => sum + c.energyWh, 0);
  const shares = spreadProportionally(
    askedW,
    candidates.map((c) => c.headroomW),
    Math.ceil(minShareW),
  );
  const setpoints: Setpoint[] = [];
  candidates.forEach((c, i) => {
    const share = shares[i] ?? 0;
    if (share > 0) setpoints.push({ deviceId: c.battery.deviceId, powerW: sign * share });
    else excluded.push({ deviceId: c.battery.deviceId, reason: 'small-share' });
  });
  const feasible = availableW >= askedW;
  return {
    targetW,
    durationMs,
    setpoints,
    feasible,
    availableW: askedW === 0 ? 0 : availableW,
    shortfallW: feasible ? 0 : askedW - availableW,
    marginW: askedW === 0 ? 0 : availableW - askedW,
    marginWh: askedW === 0 ? 0 : Math.round(energyWh - (askedW * durationMs) / MS_PER_HOUR),
    devicesUsed: setpoints.length,
    excluded,
  };
}

function trimmed(value: number, decimals: number): string {
  return String(Number(value.toFixed(decimals)));
}

/** 850 W, 95 kW, 1.5 kW, 2.25 MW: for people, not for parsing. */
export function formatPowerW(powerW: number): string {
  const abs = Math.abs(powerW);
  if (abs < 1_000) return `${Math.round(powerW)} W`;
  if (abs < 1_000_000) return `${trimmed(powerW / 1_000, 1)} kW`;
  return `${trimmed(powerW / 1_000_000, 2)} MW`;
}

/** 850 Wh, 40 kWh, 1.2 MWh. */
export function formatEnergyWh(energyWh: number): string {
  const abs = Math.abs(energyWh);
  if (abs < 1_000) return `${Math.round(energyWh)} Wh`;
  if (abs < 1_000_000) return `${trimmed(energyWh / 1_000, 1)} kWh`;
  return `${trimmed(energyWh / 1_000_000, 2)} MWh`;
}

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

/** 45 seconds, 30 minutes, 1 hour, 2 hours 15 minutes. */
export function formatDurationMs(durationMs: number): string {
  const seconds = Math.round(durationMs / 1_000);
  if (seconds < 60) return plural(seconds, 'second', 'seconds');
  const minutes = Math.round(seconds / 60);
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  if (hours === 0) return plural(minutes, 'minute', 'minutes');
  return rest === 0 ? plural(hours, 'hour', 'hours') : `${plural(hours, 'hour', 'hours')} ${plural(rest, 'minute', 'minutes')}`;
}

const EXCLUSION_WORDS: Record<ExclusionReason, (n: number) => string> = {
  offline: (n) => `${n} offline`,
  stale: (n) => `${n} not heard from recently`,
  'no-data': (n) => `${n} with missing figures`,
  'no-power': (n) => `${n} with a zero power limit`,
  'at-reserve': (n) => `${n} at ${n === 1 ? 'its' : 'their'} reserve`,
  full: (n) => `${n} already full`,
  'small-share': (n) => `${n} not needed (share too small)`,
  duplicate: (n) => `${n} listed twice`,
};

/**
 * The allocation in plain words, for the API and operators, e.g. "can
 * deliver 95 kW of the 120 kW asked for 30 minutes from 38 batteries
 * (25 kW short); 3 offline, 2 at their reserve".
 */
export function explainAllocation(result: Allocation): string {
  const askedW = Math.round(Math.abs(result.targetW));
  const verb = result.targetW < 0 ? 'absorb' : 'deliver';
  const counts = new Map<ExclusionReason, number>();
  for (const { reason } of result.excluded) counts.set(reason, (counts.get(reason) ?? 0) + 1);
  const left = [...counts].map(([reason, n]) => EXCLUSION_WORDS[reason](n)).join(', ');
  const tail = left === '' ? '' : `; ${left}`;
  const window = formatDurationMs(result.durationMs);
  if (askedW === 0) return `nothing asked (0 W)${tail}`;
  const from = plural(result.devicesUsed, 'battery', 'batteries');
  if (result.feasible) {
    return `can ${verb} ${formatPowerW(askedW)} for ${window} from ${from} (margin ${formatPowerW(result.marginW)}, ${formatEnergyWh(result.marginWh)})${tail}`;
  }
  if (result.devicesUsed === 0) return `cannot ${verb} any of the ${formatPowerW(askedW)} asked for ${window}: no battery available${tail}`;
  return `can ${verb} ${formatPowerW(result.availableW)} of the ${formatPowerW(askedW)} asked for ${window} from ${from} (${formatPowerW(result.shortfallW)} short)${tail}`;
}

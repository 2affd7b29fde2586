/**
 * What the faults in force on one device do to what it reports. Pure: the
 * caller passes the wall clock and the reading from the physics; nothing
 * here touches the physics, so a wrong reading never changes what the
 * battery really does (and the meter's balance stays that of the real
 * powers).
 *
 * A device can be covered by several faults of one kind at once (one aimed
 * at its site, one at the device, or two overlapping windows): a kind is in
 * force while any of them is, and its effect starts when the first begins
 * and ends when the last ends.
 *
 * Readings pass through the effects in a fixed order, so the result does
 * not depend on the order faults were injected: physics → `soc-jump` →
 * `overheat` → `frozen` (a stuck sensor repeats what it read when it stuck,
 * whatever else happens).
 */
import { roundTo } from './battery.ts';
import type { FaultKind } from './faults.ts';

/**
 * How long an overheating battery's reported temperature takes to climb
 * from where it was to the plateau, in wall time: a cell in thermal trouble
 * heats within seconds, whatever the weather it started from.
 */
export const OVERHEAT_CLIMB_MS = 20_000;
/** Where the climb stops: above 60 °C, the temperature a battery alert is expected to watch. */
export const OVERHEAT_PLATEAU_C = 65;
/** Size of a `soc-jump`, in percentage points. */
export const SOC_JUMP_PCT = 35;

export type Metrics = Record<string, number>;

/**
 * Reported temperature of an overheating battery `elapsedMs` of wall time
 * after the fault began at `fromC`: a straight climb to OVERHEAT_PLATEAU_C
 * over OVERHEAT_CLIMB_MS, then the plateau. A start already above the
 * plateau stays where it is.
 */
export function overheatTempC(fromC: number, elapsedMs: number): number {
  if (fromC >= OVERHEAT_PLATEAU_C) return fromC;
  const progress = Math.min(1, Math.max(0, elapsedMs) / OVERHEAT_CLIMB_MS);
  return fromC + (OVERHEAT_PLATEAU_C - fromC) * progress;
}

/**
 * Offset of a `soc-jump` that starts at `socPct`: +SOC_JUMP_PCT, or
 * -SOC_JUMP_PCT when going up would be clamped to the same value (a full
 * battery), so the jump is always visible.
 */
export function socJumpOffsetPct(socPct: number): number {
  return clampPct(socPct + SOC_JUMP_PCT) === clampPct(socPct) ? -SOC_JUMP_PCT : SOC_JUMP_PCT;
}

function clampPct(value: number): number {
  return Math.min(100, Math.max(0, value));
}

export class DeviceFaultState {
  /** Ids of the faults holding each kind in force. */
  private readonly holders = new Map<FaultKind, Set<number>>();
  private overheat: { fromC: number; sinceWallMs: number } | null = null;
  private frozen: Metrics | null = null;
  private socOffsetPct: number | null = null;

  /** Whether a fault of `kind` is in force. */
  has(kind: FaultKind): boolean {
    return this.holders.has(kind);
  }

  /** Kinds in force. */
  get kinds(): FaultKind[] {
    return [...this.holders.keys()];
  }

  /**
   * Puts fault `faultId` of `kind` in force at `wallNowMs`. `physics` gives
   * the device's reading from the physics at that instant; it is called only
   * when the effect starts and needs it. Returns true when the kind was not
   * in force before, i.e. its effect starts now.
   */
  add(kind: FaultKind, faultId: number, physics: () => Metrics, wallNowMs: number): boolean {
    const holders = this.holders.get(kind);
    if (holders) {
      holders.add(faultId);
      return false;
    }
    switch (kind) {
      case 'overheat': {
        // Climbs from the physics temperature: overheat comes before frozen in the pipeline.
        const tempC = physics().tempC;
        if (tempC !== undefined) this.overheat = { fromC: tempC, sinceWallMs: wallNowMs };
        break;
      }
      case 'soc-jump': {
        const socPct = physics().socPct;
        if (socPct !== undefined) this.socOffsetPct = socJumpOffsetPct(socPct);
        break;
      }
      case 'frozen':
        // What the device reports at this instant, other faults included.
        this.frozen = this.read(physics(), wallNowMs);
        break;
      case 'silent':
      case 'disconnect':
        // Act on delivery, not on the reading: the device and the fleet check `has`.
        break;
    }
    this.holders.set(kind, new Set([faultId]));
    return true;
  }

  /** Ends fault `faultId` of `kind`. Returns true when the kind is no longer in force, i.e. its effect ends now. */
  remove(kind: FaultKind, faultId: number): boolean {
    const holders = this.holders.get(kind);
    if (!holders?.delete(faultId) || holders.size > 0) return false;
    this.holders.delete(kind);
    if (kind === 'overheat') this.overheat = null;
    else if (kind === 'soc-jump') this.socOffsetPct = null;
    else if (kind === 'frozen') this.frozen = null;
    return true;
  }

  /** What the device reports at `wallNowMs` when the physics reads `physics`. */
  read(physics: Metrics, wallNowMs: number): Metrics {
    if (this.frozen) return { ...this.frozen };
    if (this.socOffsetPct === null && this.overheat === null) return physics;
    const metrics = { ...physics };
    if (this.socOffsetPct !== null && metrics.socPct !== undefined) {
      metrics.socPct = roundTo(clampPct(metrics.socPct + this.socOffsetPct), 2);
    }
    if (this.overheat && metrics.tempC !== undefined) {
      // Never cooler than the physics: the fault adds heat, it does not hide it.
      const climbC = overheatTempC(this.overheat.fromC, wallNowMs - this.overheat.sinceWallMs);
      metrics.tempC = roundTo(Math.max(metrics.tempC, climbC), 1);
    }
    return metrics;
  }
}

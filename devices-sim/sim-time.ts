/**
 * Simulated time. The physics runs on simulated milliseconds since the Unix
 * epoch; the simulator's local time is UTC, so "local midnight" is UTC
 * midnight and "noon" is 12:00 UTC.
 */

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** Hour of the (simulated, UTC) day in [0, 24). */
export function hourOfDay(timeMs: number): number {
  return ((((timeMs % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS);
}

/** Number of the day that contains `timeMs` (days since the epoch). */
export function dayNumber(timeMs: number): number {
  return Math.floor(timeMs / DAY_MS);
}

/** Start of the day that contains `timeMs`. */
export function startOfDay(timeMs: number): number {
  return dayNumber(timeMs) * DAY_MS;
}

/**
 * Maps wall-clock time to simulated time: the simulation starts at
 * `startTimeMs` when the wall clock reads `wallStartMs` and runs `speed`
 * times faster than the wall clock.
 */
export function simulatedTime(wallNowMs: number, wallStartMs: number, startTimeMs: number, speed: number): number {
  return startTimeMs + (wallNowMs - wallStartMs) * speed;
}

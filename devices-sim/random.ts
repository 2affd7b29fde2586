/**
 * Deterministic randomness. Everything the simulator draws comes from a seed,
 * so a fleet with the same seed behaves the same on every run. Two kinds:
 *
 * - `createRandom(seed)`: a sequential generator (mulberry32) for drawing
 *   parameters once, in a fixed order.
 * - `smoothNoise(seed, timeMs, periodMs)`: a pure function of time (value
 *   noise), so weather and household noise do not depend on how often or in
 *   what steps the physics is advanced.
 */

/** A sequential random source: `next()` is uniform in [0, 1). */
export interface Random {
  next(): number;
  /** Uniform in [min, max). */
  between(min: number, max: number): number;
}

/** 32-bit hash of a string (FNV-1a), to turn ids into seeds. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Mixes two 32-bit integers into a well-distributed 32-bit integer. */
export function mixHash(a: number, b: number): number {
  let h = (a ^ Math.imul(b | 0, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Seed for a named stream derived from a fleet seed, e.g. `deriveSeed(42, 'site-0001/cloud')`. */
export function deriveSeed(seed: number, name: string): number {
  return mixHash(seed >>> 0, hashString(name));
}

export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  return { next, between: (min, max) => min + (max - min) * next() };
}

/** Uniform in [0, 1) for an integer lattice point; pure. */
function latticeValue(seed: number, index: number): number {
  // Indices of real timestamps divided by periods of a minute or more fit in 2^32.
  return mixHash(seed, index % 4_294_967_296) / 4_294_967_296;
}

/**
 * Smooth value noise in [0, 1): random values at multiples of `periodMs`,
 * joined by a smoothstep, so the result changes slowly and continuously
 * over about one period.
 */
export function smoothNoise(seed: number, timeMs: number, periodMs: number): number {
  const position = timeMs / periodMs;
  const index = Math.floor(position);
  const fraction = position - index;
  const eased = fraction * fraction * (3 - 2 * fraction);
  const a = latticeValue(seed, index);
  const b = latticeValue(seed, index + 1);
  return a + (b - a) * eased;
}

/** Uniform in [0, 1) and constant within each slot of `periodMs`; pure. */
export function slotNoise(seed: number, timeMs: number, periodMs: number): number {
  return latticeValue(seed, Math.floor(timeMs / periodMs));
}

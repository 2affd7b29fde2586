/**
 * Faults an operator injects into the simulator to see the platform's
 * alerts fire: what they are called, how they are written, and whether a
 * written or built spec is valid. Pure: no clock, no I/O.
 *
 * Written form: `kind:target`, `kind:target@start` or
 * `kind:target@start-end`, where start and end are seconds of wall time
 * after the fleet started (up to three decimals: the fleet's clock counts
 * milliseconds) and `target` is a device id (`site-0001-battery`) or a site
 * id (`site-0001`). A list is comma separated. Parsing reports every
 * problem at once, each naming the item it is about, so an operator fixes
 * a long list in one go rather than one error per run.
 */

export const FAULT_KINDS = ['overheat', 'silent', 'disconnect', 'frozen', 'soc-jump'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultSpec {
  kind: FaultKind;
  /** A device id, or a site id meaning every device of the site the kind applies to. */
  target: string;
  /**
   * Seconds of wall time after the fleet started when the fault begins.
   * Absent: at once (when injected), or when the loop starts (in
   * `FleetOptions.faults`). A start already past also means at once.
   */
  startSeconds?: number;
  /** Seconds of wall time after the fleet started when the fault clears; needs `startSeconds`. Absent: until cleared. */
  endSeconds?: number;
  /**
   * `disconnect` only: seconds offline before the device reconnects by
   * itself (the fault then ends); 30 when absent. Not part of the written
   * form.
   */
  reconnectAfterSeconds?: number;
}

export type FaultParse<T> = { ok: true; value: T } | { ok: false; problems: string[] };

/** Most specs in one list. */
export const MAX_FAULT_SPECS = 1_000;
/** Longest written spec, in characters. */
export const MAX_FAULT_SPEC_LENGTH = 200;
/** Largest number of seconds: about 31 years, far beyond any run, and small enough to stay exact in milliseconds. */
export const MAX_FAULT_SECONDS = 999_999_999;
/** How long a `disconnect` keeps a device offline when the spec does not say. */
export const DEFAULT_RECONNECT_AFTER_SECONDS = 30;
/** Ids of devices and sites, as the platform accepts them. */
export const FAULT_TARGET_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Kinds that only make sense for a battery: the others apply to any device. */
const BATTERY_ONLY_KINDS: ReadonlySet<FaultKind> = new Set<FaultKind>(['overheat', 'soc-jump']);
const SECONDS_PATTERN = /^\d{1,9}(\.\d{1,3})?$/;
/** Longest excerpt of a bad input quoted in a problem, so one huge item cannot make a huge message. */
const QUOTE_LIMIT = 80;

export function isFaultKind(value: unknown): value is FaultKind {
  return typeof value === 'string' && (FAULT_KINDS as readonly string[]).includes(value);
}

/** Whether a fault of `kind` can act on a device of `deviceType`. */
export function faultAppliesTo(kind: FaultKind, deviceType: string): boolean {
  return !BATTERY_ONLY_KINDS.has(kind) || deviceType === 'battery';
}

/** The identity of a fault: one fault per kind and target is in force at a time. */
export function faultKey(kind: FaultKind, target: string): string {
  return `${kind}:${target}`;
}

/** A bad input quoted for a message: escaped (no control characters reach a log line) and shortened. */
export function quote(text: string): string {
  const short = text.length > QUOTE_LIMIT ? `${text.slice(0, QUOTE_LIMIT)}…` : text;
  return JSON.stringify(short);
}

function targetProblem(target: string): string | undefined {
  if (target === '') return 'missing target';
  if (!FAULT_TARGET_PATTERN.test(target)) {
    return `bad target ${quote(target)}: ids are 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`;
  }
  return undefined;
}

function kindProblem(kind: string): string | undefined {
  if (kind === '') return 'missing kind';
  if (!isFaultKind(kind)) return `unknown kind ${quote(kind)} (one of ${FAULT_KINDS.join(', ')})`;
  return undefined;
}

function secondsProblem(name: string, value: unknown, positive = false): string | undefined {
  const valid =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    value >= 0 &&
    value <= MAX_FAULT_SECONDS &&
    // At most three decimals: what the written form can carry.
    Number(value.toFixed(3)) === value &&
    !(positive && value === 0);
  if (valid) return undefined;
  const range = positive ? `more than 0 and at most ${MAX_FAULT_SECONDS}` : `from 0 to ${MAX_FAULT_SECONDS}`;
  // Described without String(): an arbitrary object's conversion can throw.
  const shown = typeof value === 'number' ? String(value) : typeof value === 'string' ? quote(value) : `(a ${value === null ? 'null' : typeof value})`;
  return `bad ${name} ${shown}: seconds ${range}, at most 3 decimals`;
}

/**
 * Problems of a spec built in code (or read from JSON): the same rules as
 * the written form, plus `reconnectAfterSeconds`. Empty when valid.
 */
export function validateFaultSpec(spec: FaultSpec): string[] {
  const problems: string[] = [];
  // Specs may come from untyped JSON: check the shapes the types promise.
  const kind: unknown = spec.kind;
  const target: unknown = spec.target;
  if (typeof kind !== 'string') problems.push('missing kind');
  else {
    const problem = kindProblem(kind);
    if (problem) problems.push(problem);
  }
  if (typeof target !== 'string') problems.push('missing target');
  else {
    const problem = targetProblem(target);
    if (problem) problems.push(problem);
  }
  const { startSeconds, endSeconds, reconnectAfterSeconds } = spec;
  if (startSeconds !== undefined) {
    const problem = secondsProblem('start', startSeconds);
    if (problem) problems.push(problem);
  }
  if (endSeconds !== undefined) {
    const problem = secondsProblem('end', endSeconds);
    if (problem) problems.push(problem);
    else if (startSeconds === undefined) problems.push('an end needs a start');
    else if (typeof startSeconds === 'number' && endSeconds <= startSeconds) {
      problems.push(`end ${endSeconds} is not after start ${startSeconds}`);
    }
  }
  if (reconnectAfterSeconds !== undefined) {
    if (kind !== 'disconnect') problems.push('reconnectAfterSeconds applies to disconnect only');
    const problem = secondsProblem('reconnectAfterSeconds', reconnectAfterSeconds, true);
    if (problem) problems.push(problem);
  }
  return problems;
}

/** Problems of one written item (trimmed, not empty, not too long), without naming the item; or the spec. */
function parseItem(item: string): FaultParse<FaultSpec> {
  const problems: string[] = [];
  const colon = item.indexOf(':');
  const kind = colon < 0 ? item : item.slice(0, colon);
  const rest = colon < 0 ? '' : item.slice(colon + 1);
  // Ids cannot contain '@', so the first one starts the time.
  const at = rest.indexOf('@');
  const target = at < 0 ? rest : rest.slice(0, at);
  const time = at < 0 ? undefined : rest.slice(at + 1);

  const badKind = kindProblem(kind);
  if (badKind) problems.push(badKind);
  const badTarget = targetProblem(target);
  if (badTarget) problems.push(badTarget);

  let startSeconds: number | undefined;
  let endSeconds: number | undefined;
  if (time !== undefined) {
    const dash = time.indexOf('-');
    const startText = dash < 0 ? time : time.slice(0, dash);
    const endText = dash < 0 ? undefined : time.slice(dash + 1);
    if (SECONDS_PATTERN.test(startText)) startSeconds = Number(startText);
    else problems.push(`bad seconds ${quote(startText)} after '@': seconds from 0 to ${MAX_FAULT_SECONDS}, at most 3 decimals`);
    if (endText !== undefined) {
      if (SECONDS_PATTERN.test(endText)) endSeconds = Number(endText);
      else problems.push(`bad end seconds ${quote(endText)}: seconds from 0 to ${MAX_FAULT_SECONDS}, at most 3 decimals`);
    }
    if (startSeconds !== undefined && endSeconds !== undefined && endSeconds <= startSeconds) {
      problems.push(`end ${endText} is not after start ${startText}`);
    }
  }
  if (problems.length > 0) return { ok: false, problems };
  const spec: FaultSpec = { kind: kind as FaultKind, target };
  if (startSeconds !== undefined) spec.startSeconds = startSeconds;
  if (endSeconds !== undefined) spec.endSeconds = endSeconds;
  return { ok: true, value: spec };
}

/** Checks the bounds of one item; the problem when it is empty or too long. */
function itemBoundsProblem(item: string): string | undefined {
  if (item === '') return 'empty spec';
  if (item.length > MAX_FAULT_SPEC_LENGTH) return `spec ${quote(item)} is longer than ${MAX_FAULT_SPEC_LENGTH} characters`;
  return undefined;
}

/**
 * Parses one written spec (surrounding blanks ignored); on failure lists
 * every problem found, each starting with the quoted spec.
 */
export function parseFaultSpec(text: string): FaultParse<FaultSpec> {
  const item = text.trim();
  const bounds = itemBoundsProblem(item);
  if (bounds) return { ok: false, problems: [bounds] };
  const parsed = parseItem(item);
  return parsed.ok ? parsed : { ok: false, problems: parsed.problems.map((problem) => `${quote(item)}: ${problem}`) };
}

/**
 * Parses a comma-separated list; an empty (or blank) string is no specs.
 * Lists every problem of every item, each starting with `item N` (from 1)
 * and the quoted item.
 */
export function parseFaultSpecs(commaSeparated: string): FaultParse<FaultSpec[]> {
  if (commaSeparated.trim() === '') return { ok: true, value: [] };
  // Bounded before splitting: a list this long cannot be valid anyway.
  const maxLength = MAX_FAULT_SPECS * (MAX_FAULT_SPEC_LENGTH + 1);
  if (commaSeparated.length > maxLength) {
    return { ok: false, problems: [`fault list is ${commaSeparated.length} characters long, at most ${maxLength}`] };
  }
  const items = commaSeparated.split(',');
  const problems: string[] = [];
  if (items.length > MAX_FAULT_SPECS) problems.push(`${items.length} fault specs, at most ${MAX_FAULT_SPECS}`);
  const specs: FaultSpec[] = [];
  items.slice(0, MAX_FAULT_SPECS).forEach((raw, index) => {
    const item = raw.trim();
    const bounds = itemBoundsProblem(item);
    if (bounds) {
      problems.push(`item ${index + 1}: ${bounds}`);
      return;
    }
    const parsed = parseItem(item);
    if (parsed.ok) specs.push(parsed.value);
    else problems.push(...parsed.problems.map((problem) => `item ${index + 1} ${quote(item)}: ${problem}`));
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: specs };
}

/** The written form of a spec; `reconnectAfterSeconds` has none and is left out. */
export function formatFaultSpec(spec: FaultSpec): string {
  const base = `${spec.kind}:${spec.target}`;
  if (spec.startSeconds === undefined) return base;
  const start = String(spec.startSeconds);
  return spec.endSeconds === undefined ? `${base}@${start}` : `${base}@${start}-${String(spec.endSeconds)}`;
}

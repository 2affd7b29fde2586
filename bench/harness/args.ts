/** Reading `key=value` scenario arguments, with a clear error for a bad value. */

export function numberArg(args: Readonly<Record<string, string>>, name: string, fallback: number): number {
  const value = args[name] === undefined ? fallback : Number(args[name]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got ${args[name]}`);
  return value;
}

/** `qos=0`, `qos=1` or `qos=0,1` (the default). */
export function qosArg(args: Readonly<Record<string, string>>): Array<0 | 1> {
  const qos = (args.qos ?? '0,1').split(',').map(Number);
  if (qos.some((q) => q !== 0 && q !== 1)) throw new Error(`qos must be 0, 1 or 0,1, got ${args.qos}`);
  return qos as Array<0 | 1>;
}

/**
 * Table lookups by strings that came from a client or an upstream. `table[key]` on a plain
 * object also finds what `Object.prototype` holds (`constructor`, `toString`, `__proto__`):
 * an upstream echoing `output_format: "constructor"` would get a function back. Only the
 * table's own entries count here.
 */
export function own<T>(
  table: Readonly<Record<string, T>> | undefined,
  key: string | undefined,
): T | undefined {
  return table !== undefined && key !== undefined && Object.hasOwn(table, key)
    ? table[key]
    : undefined;
}

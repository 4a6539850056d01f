/** How the console writes numbers, money, times and durations: one place, one style. */

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export function count(n: number): string {
  return integer.format(n);
}

/** USD with enough decimals for a single image's cost. */
export function usd(n: number): string {
  if (n === 0) return "$0";
  const digits = Math.abs(n) >= 100 ? 2 : Math.abs(n) >= 1 ? 3 : 4;
  return `$${n.toFixed(digits).replace(/(\.\d*?[1-9])0+$|\.0+$/, "$1")}`;
}

export function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(fraction === 0 || fraction === 1 ? 0 : 1)}%`;
}

export function ms(n: number): string {
  return n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`;
}

/** A moment in the reader's time zone, to the second. */
export function dateTime(iso: string): string {
  const d = new Date(iso);
  return `${d.toLocaleDateString("en-CA")} ${d.toLocaleTimeString("en-GB")}`;
}

/** "in 42 s", "in 3 min", for a moment ahead. */
export function fromNow(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((Date.parse(iso) - now) / 1000));
  return s < 120 ? `in ${s} s` : `in ${Math.round(s / 60)} min`;
}

/** A token (SHA-256 hex) shortened for a table; the whole one in a title or details. */
export function shortToken(token: string): string {
  return `${token.slice(0, 10)}…`;
}

/** YYYY-MM-DD (UTC) `daysAgo` days before now: the management API's dates. */
export function utcDay(daysAgo = 0, now = Date.now()): string {
  return new Date(now - daysAgo * 86_400_000).toISOString().slice(0, 10);
}

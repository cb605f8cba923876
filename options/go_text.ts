/**
 * Go's text forms of values, as upstream's flags and annotations are read and printed:
 * `strconv.ParseBool`, `time.ParseDuration` and `time.Duration.String`. Pure; the flag parser,
 * the help text and the controllers that read boolean annotations share them.
 *
 * @module
 */

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration (`time.ParseDuration`) into milliseconds. */
export function parseGoDuration(text: string): number {
  const s = text.trim();
  if (s === "0") return 0;
  const m = /^([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.exec(s);
  if (!m) throw new Error(`invalid duration ${JSON.stringify(text)}`);
  let total = 0;
  for (const part of s.replace(/^[-+]/, "").matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(part[1]) * DURATION_UNITS[part[2]];
  }
  return m[1] === "-" ? -total : total;
}

/** Formats milliseconds as Go prints a `time.Duration` (`5m0s`, `1m30s`, `300ms`, `0s`). */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return "0s";
  const neg = ms < 0;
  let rest = Math.abs(ms);
  if (rest < 1000) return `${neg ? "-" : ""}${rest}ms`;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = rest / 1000;
  return `${neg ? "-" : ""}${h ? `${h}h` : ""}${h || m ? `${m}m` : ""}${s}s`;
}

/** Go's strconv.ParseBool (flags and boolean annotations use it upstream); null when not a boolean. */
export function parseGoBool(text: string): boolean | null {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
  return null;
}

/**
 * Logging through `@logtape/logtape`, formatted like klog (`I1125 09:30:00.123456 4242 proxy] msg k=v`)
 * by default or as one JSON object per line with `--log-format=json`.
 *
 * Secrets never reach a sink: any property whose name looks like a password, token or key is
 * replaced by "<redacted>" in the formatter itself, so a careless call site cannot leak one.
 *
 * @module
 */
import { configure, getLogger, type Logger, type LogLevel, type LogRecord, reset } from "@logtape/logtape";

export type { Logger };

const SECRET_KEY = /pass(word)?s?$|token|secret|credential|authorization|^key$/i;

/** Replaces secret-looking properties, recursively, before anything is formatted. */
export function redact(value: unknown, key = ""): unknown {
  if (key !== "" && SECRET_KEY.test(key)) return "<redacted>";
  if (Array.isArray(value)) return value.map((v) => redact(v));
  if (value && typeof value === "object" && !(value instanceof Error)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)]));
  }
  return value;
}

const klogLetter: Record<LogLevel, string> = {
  trace: "I",
  debug: "I",
  info: "I",
  warning: "W",
  error: "E",
  fatal: "F",
};

function pad(n: number, w = 2): string {
  return String(n).padStart(w, "0");
}

/** A placeholder's value reads as part of the sentence: strings unquoted, the rest as JSON. */
function renderMessage(record: LogRecord): string {
  return record.message.map((part, i) =>
    i % 2 === 0 || typeof part === "string" ? String(part) : formatValue(redact(part))
  ).join("");
}

function formatValue(v: unknown): string {
  if (v instanceof Error) return v.message;
  if (typeof v === "string") return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v) ?? String(v);
}

/** Where a log call was made and when, to the microsecond: what logtape's record does not carry. */
export interface CallSite {
  /** `controller.ts:141`: the calling module's base name and line. */
  site: string;
  /** Microseconds since the epoch, from the high-resolution clock. */
  micros: number;
}

/**
 * The first stack frame outside logtape and this module. Sinks run synchronously inside the
 * logger call, so the caller is on the stack. In the bundle frames name its chunk files (`chunk-….js:N`).
 */
export function callSite(): CallSite {
  const micros = Math.round((performance.timeOrigin + performance.now()) * 1000);
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 24;
  const stack = new Error().stack ?? "";
  Error.stackTraceLimit = limit;
  for (const line of stack.split("\n").slice(1)) {
    const m = line.match(/([^/\\(\s]+):(\d+):\d+\)?\s*$/);
    if (!m || /logtape/.test(line) || m[1] === "log.ts") continue;
    return { site: `${m[1]}:${m[2]}`, micros };
  }
  return { site: "???:1", micros };
}

/**
 * klog's header: severity letter, MMDD, time with microseconds, pid, `file:line`, then the
 * message prefixed by its component.
 */
export function formatKlog(record: LogRecord, at?: CallSite): string {
  // The record's timestamp has millisecond resolution; the call site's clock has microseconds.
  const micros = at && Math.abs(at.micros / 1000 - record.timestamp) < 1000
    ? at.micros
    : record.timestamp * 1000;
  const d = new Date(Math.floor(micros / 1000));
  const head = `${klogLetter[record.level]}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.` +
    `${pad(micros % 1_000_000, 6)} ${Deno.pid} ${at?.site ?? "???:1"}]`;
  const component = record.category.slice(1).join("/");
  const props = Object.entries(redact(record.properties) as Record<string, unknown>)
    .filter(([k]) => !record.rawMessage.includes(`{${k}}`))
    .map(([k, v]) => ` ${k}=${formatValue(v)}`).join("");
  return `${head} ${component ? `${component}: ` : ""}${renderMessage(record)}${props}\n`;
}

export function formatJson(record: LogRecord, at?: CallSite): string {
  return JSON.stringify({
    ts: new Date(record.timestamp).toISOString(),
    level: record.level,
    logger: record.category.join("."),
    ...(at ? { caller: at.site } : {}),
    msg: renderMessage(record),
    ...(redact(record.properties) as Record<string, unknown>),
  }) + "\n";
}

/** klog verbosity to a logtape level: 0 → info, 1–3 → debug, ≥4 → trace. */
export function levelForVerbosity(v: number): LogLevel {
  return v >= 4 ? "trace" : v >= 1 ? "debug" : "info";
}

/** Configures the process-wide logger; call once from main. Output goes to stderr. */
export async function setupLogging(
  opts: { verbosity: number; format: "text" | "json"; write?: (line: string) => void },
): Promise<void> {
  const encoder = new TextEncoder();
  const write = opts.write ?? ((line: string) => Deno.stderr.writeSync(encoder.encode(line)));
  const formatter = opts.format === "json" ? formatJson : formatKlog;
  await reset();
  await configure({
    reset: true,
    sinks: { stderr: (record: LogRecord) => write(formatter(record, callSite())) },
    loggers: [
      { category: ["kube-router"], lowestLevel: levelForVerbosity(opts.verbosity), sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** The logger of one component, e.g. `logger("firewall")`. */
export function logger(...component: string[]): Logger {
  return getLogger(["kube-router", ...component]);
}

/**
 * A text to log as it is: logtape reads `{name}` in a message as a placeholder, so braces in
 * data (a problem quoting `{}` from a manifest) are doubled, which logtape prints as one.
 */
export function literal(text: string): string {
  return text.replace(/[{}]/g, (c) => c + c);
}

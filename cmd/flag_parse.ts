/**
 * A parser that reads arguments the way spf13/pflag does, so upstream DaemonSet args work
 * unchanged:
 * - `--flag=value` and `--flag value`; booleans are bare (`--flag`) or `--flag=false` (pflag
 *   does not take `--bool false`: the `false` is a positional argument there, and here too);
 * - shorthands `-v 3`, `-v=3`, `-v3`, and bool shorthands `-V`, `-h`;
 * - slices take comma lists and repeats; the first use replaces the default, later uses append;
 * - Go durations (`1m0s`, `2h22m`, `300ms`, `1.5h`);
 * - `--` ends the flags.
 *
 * Errors are `ConfigError`s whose one-line message names the flag and the accepted form.
 *
 * @module
 */
// Strict, as pflag's IP flags (Go's net.ParseIP since 1.17): leading-zero octets ("010") are
// refused, since an octal-looking address in a flag is ambiguous.
import { isIP } from "../net/ip.ts";
import {
  type AgentOptions,
  camelCase,
  FLAG_BY_NAME,
  FLAG_BY_SHORTHAND,
  type FlagSpec,
} from "../options/flag_table.ts";
import { defaultOptions } from "../options/mod.ts";
import { ConfigError } from "../errors/mod.ts";
import { parseGoBool, parseGoDuration } from "../options/go_text.ts";

// BigInt: 2 ** 64 - 1 is not representable as a double (it prints as 18446744073709552000).
const UINT_MAX: Record<string, bigint> = {
  uint: 2n ** 64n - 1n,
  uint8: 255n,
  uint16: 65535n,
  uint32: 4294967295n,
  uintSlice: 2n ** 64n - 1n,
};

function parseUint(flag: FlagSpec, text: string): number {
  // pflag's uint flags use strconv.ParseUint(s, 0, bits): decimal, 0x hex, 0o/0 octal, 0b binary.
  const t = text.trim();
  let n: bigint | undefined;
  if (/^0[xX][0-9a-fA-F]+$/.test(t)) n = BigInt(t);
  else if (/^0[bB][01]+$/.test(t)) n = BigInt(t);
  else if (/^0[oO]?[0-7]+$/.test(t)) n = BigInt("0o" + t.replace(/^0[oO]?/, ""));
  else if (/^\d+$/.test(t)) n = BigInt(t);
  const max = UINT_MAX[flag.type];
  if (n === undefined || n < 0n || n > max) {
    throw new ConfigError(
      `invalid argument ${
        JSON.stringify(text)
      } for "--${flag.name}" flag: expected an unsigned integer from 0 to ${max}`,
    );
  }
  return Number(n);
}

function parseBool(flag: FlagSpec, text: string): boolean {
  const v = parseGoBool(text);
  if (v !== null) return v;
  throw new ConfigError(
    `invalid argument ${JSON.stringify(text)} for "--${flag.name}" flag: expected true or false`,
  );
}

/** pflag reads slices as one CSV record: quotes allow commas inside a value. */
function splitCsv(text: string): string[] {
  if (text === "") return [];
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      if (quoted && text[i + 1] === '"') {
        cur += '"';
        i++;
      } else quoted = !quoted;
    } else if (c === "," && !quoted) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** Converts one textual value into the flag's type. */
export function parseValue(flag: FlagSpec, text: string): unknown {
  switch (flag.type) {
    case "bool":
      return parseBool(flag, text);
    case "string":
      if (flag.choices && !flag.choices.includes(text)) {
        throw new ConfigError(
          `invalid argument ${JSON.stringify(text)} for "--${flag.name}" flag: accepted values are ${
            flag.choices.join(", ")
          }`,
        );
      }
      return text;
    case "duration":
      try {
        return parseGoDuration(text);
      } catch {
        throw new ConfigError(
          `invalid argument ${
            JSON.stringify(text)
          } for "--${flag.name}" flag: expected a Go duration such as 30s, 5m or 1h30m`,
        );
      }
    case "uint":
    case "uint8":
    case "uint16":
    case "uint32":
      return parseUint(flag, text);
    case "stringSlice":
      return splitCsv(text);
    case "ipSlice":
      return splitCsv(text).map((ip) => {
        const t = ip.trim();
        if (!isIP(t)) {
          throw new ConfigError(
            `invalid argument ${
              JSON.stringify(ip)
            } for "--${flag.name}" flag: expected IP addresses separated by commas`,
          );
        }
        return t;
      });
    case "uintSlice":
      return splitCsv(text).map((v) => parseUint(flag, v));
  }
}

export interface ParsedArgs {
  options: AgentOptions;
  /** Names of the flags given on the command line (or from their env fallback). */
  set: Set<string>;
  /** Arguments that are not flags, in order. */
  positionals: string[];
  /**
   * With `collect`, every problem (unknown flag, malformed value, missing argument) instead of a
   * throw at the first one; a flag whose value was refused keeps its default.
   */
  problems: string[];
  /** Names of the flags whose value was refused (their cross-field checks would only echo it). */
  refused: Set<string>;
}

/**
 * Parses argv (without the program name) into options. Unknown flags and bad values throw a
 * `ConfigError`. Env fallbacks from the flag table apply when the flag is not given.
 */
export function parseFlags(
  argv: readonly string[],
  env: (name: string) => string | undefined = () => undefined,
  opts: { collect?: boolean } = {},
): ParsedArgs {
  const options = defaultOptions() as unknown as Record<string, unknown>;
  const set = new Set<string>();
  const positionals: string[] = [];
  const problems: string[] = [];
  const refused = new Set<string>();
  const fail = (message: string, flag?: string) => {
    if (!opts.collect) throw new ConfigError(message);
    problems.push(message);
    if (flag) refused.add(flag);
  };

  const assign = (flag: FlagSpec, text: string) => {
    const key = camelCase(flag.name);
    let value: unknown;
    try {
      value = parseValue(flag, text);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return fail(e.message, flag.name);
    }
    if (flag.type.endsWith("Slice") && set.has(flag.name)) {
      options[key] = [...(options[key] as unknown[]), ...(value as unknown[])];
    } else {
      options[key] = value;
    }
    set.add(flag.name);
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const flag = FLAG_BY_NAME.get(name);
      if (!flag) {
        fail(`unknown flag: --${name} (see --help for the accepted flags)`);
        continue;
      }
      if (eq >= 0) assign(flag, arg.slice(eq + 1));
      else if (flag.type === "bool") assign(flag, "true");
      else if (i + 1 < argv.length) assign(flag, argv[++i]);
      else fail(`flag needs an argument: --${name}`, name);
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1) {
      // A group of shorthands: "-Vh", or one with its value attached: "-v3", "-v=3".
      for (let j = 1; j < arg.length; j++) {
        const flag = FLAG_BY_SHORTHAND.get(arg[j]);
        if (!flag) {
          fail(`unknown shorthand flag: '${arg[j]}' in ${arg}`);
          break;
        }
        if (flag.type === "bool") {
          if (arg[j + 1] === "=") {
            assign(flag, arg.slice(j + 2));
            break;
          }
          assign(flag, "true");
          continue;
        }
        const rest = arg.slice(j + 1).replace(/^=/, "");
        if (rest !== "") assign(flag, rest);
        else if (i + 1 < argv.length) assign(flag, argv[++i]);
        else fail(`flag needs an argument: '${arg[j]}' in -${arg[j]}`, flag.name);
        break;
      }
      continue;
    }
    positionals.push(arg);
  }

  for (const flag of FLAG_BY_NAME.values()) {
    if (flag.env && !set.has(flag.name)) {
      const v = env(flag.env);
      if (v !== undefined && v !== "") assign(flag, v);
    }
  }
  return { options: options as unknown as AgentOptions, set, positionals, problems, refused };
}

/**
 * The argument walk of the small hand-parsed subcommands (`trace`, `bgp`): `--name=value` and
 * `--name value`, one argument at a time, with the value taken on demand, so each subcommand
 * keeps only its own `switch`. (The agent's own flags go through `cmd/flag_parse.ts`.)
 *
 * @module
 */

/** One argument of the walk. */
export interface Arg {
  /** The argument with any `=value` of a `--name=value` split off ("--port", "-h", "peers"). */
  readonly name: string;
  /** The argument as given. */
  readonly raw: string;
  /** The value after `=` in `--name=value`; undefined otherwise. */
  readonly inline: string | undefined;
  /** The flag's value: the inline one, else the next argument (consumed); throws `missing(name)`. */
  value(): string;
  /** The next argument, not consumed; undefined at the end. */
  peek(): string | undefined;
  /** Consumes the next argument (call after `peek()` returned one). */
  take(): string;
}

/** Walks `argv`; `missing(name)` is the error thrown when a flag's value is absent. */
export function* walkArgs(argv: readonly string[], missing: (name: string) => Error): Generator<Arg> {
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i];
    const eq = raw.indexOf("=");
    const split = raw.startsWith("--") && eq > 0;
    const name = split ? raw.slice(0, eq) : raw;
    const inline = split ? raw.slice(eq + 1) : undefined;
    yield {
      name,
      raw,
      inline,
      value() {
        const v = inline ?? argv[++i];
        if (v === undefined) throw missing(name);
        return v;
      },
      peek: () => argv[i + 1],
      take: () => argv[++i],
    };
  }
}

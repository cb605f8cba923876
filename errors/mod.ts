/**
 * The tree's one configuration error, at the bottom floor so every layer (the flag parser, the
 * watchers, the BGP library, the controllers) throws the same class and `main.ts` maps every one
 * of them to exit status 2. Programming errors stay built-in `Error`s.
 *
 * @module
 */

/** Options of `ConfigError` beyond `ErrorOptions`. */
export interface ConfigErrorOptions extends ErrorOptions {
  /**
   * What joins the problems into the message: a newline by default (the CLI prints one line
   * each); the BGP library uses "; " so a log record of its errors stays one line.
   */
  separator?: string;
}

/** Bad flags, annotations, manifests or BGP configuration: exit status 2, message shown as is. */
export class ConfigError extends Error {
  /** Every problem found, one line each (the message joins them). */
  readonly problems: string[];

  constructor(problems: string | string[], options?: ConfigErrorOptions) {
    const list = Array.isArray(problems) ? problems : [problems];
    super(list.join(options?.separator ?? "\n"), options);
    this.name = "ConfigError";
    this.problems = list;
  }
}

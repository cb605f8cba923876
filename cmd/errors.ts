/**
 * Errors that `main.ts` maps to exit codes. Programming errors stay built-in `Error`s.
 *
 * @module
 */

/** Bad flags, annotations or manifests: exit status 2, message shown as is. */
export class ConfigError extends Error {
  /** Every problem found, one line each (the message joins them). */
  readonly problems: string[];

  constructor(problems: string | string[], options?: ErrorOptions) {
    const list = Array.isArray(problems) ? problems : [problems];
    super(list.join("\n"), options);
    this.name = "ConfigError";
    this.problems = list;
  }
}

/**
 * The agent's options: every flag of `flag_table.ts` by camelCase name, durations in
 * milliseconds. Controllers import `AgentOptions` from here.
 *
 * @module
 */
export { type AgentOptions, defaultOptions } from "./flag_table.ts";

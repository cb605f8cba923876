/**
 * Running `ipset`: save, list headers, list names, and one `ipset restore` per batch.
 *
 * @module
 */
import type { Runner } from "../exec.ts";
import { type IpSet, type IpSetHeader, parseListTerse, parseSave } from "./save.ts";

/** Options for every call (a network namespace for tests). */
export interface IpsetTool {
  netns?: string;
}

/** `ipset save [NAME]`, parsed. */
export async function save(runner: Runner, tool: IpsetTool = {}, name?: string): Promise<IpSet[]> {
  const r = await runner.run(["ipset", "save", ...(name ? [name] : [])], {
    readOnly: true,
    netns: tool.netns,
  });
  return parseSave(r.stdout);
}

/** `ipset list -n`: names only. */
export async function listNames(runner: Runner, tool: IpsetTool = {}): Promise<string[]> {
  const r = await runner.run(["ipset", "list", "-n"], { readOnly: true, netns: tool.netns });
  return r.stdout.split("\n").map((s) => s.trim()).filter((s) => s !== "");
}

/** `ipset list -t`: headers with entry and reference counts, without the entries. */
export async function listHeaders(runner: Runner, tool: IpsetTool = {}): Promise<IpSetHeader[]> {
  const r = await runner.run(["ipset", "list", "-t"], { readOnly: true, netns: tool.netns });
  return parseListTerse(r.stdout);
}

/** `ipset restore` of a script (no-op for an empty script). Throws `ExecError` with the line. */
export async function restore(runner: Runner, script: string, tool: IpsetTool = {}): Promise<void> {
  if (script === "") return;
  await runner.run(["ipset", "restore"], { stdin: script, netns: tool.netns });
}

/**
 * Destroys sets by name in one `ipset restore`, treating "does not exist" as done: names that
 * are not present (per `ipset list -n`) are skipped.
 */
export async function destroySets(
  runner: Runner,
  names: readonly string[],
  tool: IpsetTool = {},
): Promise<void> {
  if (names.length === 0) return;
  const present = new Set(await listNames(runner, tool));
  const script = names.filter((n) => present.has(n)).map((n) => `destroy ${n}`).join("\n");
  if (script !== "") await restore(runner, script + "\n", tool);
}

/**
 * Running the iptables tools: which binary for which family and backend, and the batch
 * operations the agent needs (save, restore --noflush, list one chain). Every call is one
 * process; a restore is one atomic transaction.
 *
 * @module
 */
import { ExecError, type Runner } from "../exec.ts";
import { parseListRules, parseSave, type Rule, type TableDump } from "./save.ts";
import type { IpFamilyName } from "../../net/ip.ts";

/** The family by name (`net/ip.ts`), as the iptables tooling spells it. */
export type IpFamily = IpFamilyName;
/** `nft` is iptables-nft (Debian's default), `legacy` is the x_tables backend. */
export type IptablesBackend = "nft" | "legacy";

/**
 * The backend the host's `iptables` command uses (what kube-proxy, the CNI and the operator see),
 * so our rules land in the same tables as everyone else's. nft when it cannot be told.
 */
export async function detectIptablesBackend(runner: Runner): Promise<IptablesBackend> {
  try {
    const r = await runner.run(["iptables", "-V"], { readOnly: true });
    return /legacy/.test(r.stdout) ? "legacy" : "nft";
  } catch {
    return "nft";
  }
}

/** Which binaries to run. */
export interface IptablesTool {
  family: IpFamily;
  backend: IptablesBackend;
  /** Extra options every call gets, e.g. a network namespace. */
  netns?: string;
}

function bin(tool: IptablesTool, suffix: "" | "-save" | "-restore"): string {
  const base = tool.family === "ipv4" ? "iptables" : "ip6tables";
  return `${base}-${tool.backend}${suffix}`;
}

/** The binary names, for logs and tests. */
export function binaries(tool: IptablesTool): { cmd: string; save: string; restore: string } {
  return { cmd: bin(tool, ""), save: bin(tool, "-save"), restore: bin(tool, "-restore") };
}

/** `iptables-save [-t table]`, parsed. */
export async function save(runner: Runner, tool: IptablesTool, table?: string): Promise<TableDump[]> {
  const argv = [bin(tool, "-save"), ...(table ? ["-t", table] : [])];
  const r = await runner.run(argv, { readOnly: true, netns: tool.netns });
  return parseSave(r.stdout);
}

/** `iptables-save` raw text. */
export async function saveText(runner: Runner, tool: IptablesTool, table?: string): Promise<string> {
  const argv = [bin(tool, "-save"), ...(table ? ["-t", table] : [])];
  return (await runner.run(argv, { readOnly: true, netns: tool.netns })).stdout;
}

/**
 * `iptables-restore --noflush -w` with the payload on stdin: one atomic transaction. Throws an
 * `ExecError` naming the offending line; the kernel then still holds the previous ruleset.
 */
export async function restoreNoflush(runner: Runner, tool: IptablesTool, payload: string): Promise<void> {
  try {
    await runner.run([bin(tool, "-restore"), "--noflush", "-w"], { stdin: payload, netns: tool.netns });
  } catch (e) {
    throw withRestoreLine(e, payload);
  }
}

/**
 * iptables-restore words its failures "Error occurred at line: N", which `ExecError`'s line
 * finder does not know; restate it in a form it does so the error carries the offending line.
 */
function withRestoreLine(e: unknown, payload: string): unknown {
  if (!(e instanceof ExecError) || e.offendingLine) return e;
  const m = /Error occurred at line: (\d+)/.exec(e.stderr);
  if (!m) return e;
  return new ExecError(e.argv, e.code, `${e.stderr.trim()}\nline ${m[1]} failed`, payload, { cause: e });
}

/** `iptables-restore` without --noflush: replaces whole tables (tests and fixtures only). */
export async function restoreFull(runner: Runner, tool: IptablesTool, payload: string): Promise<void> {
  try {
    await runner.run([bin(tool, "-restore"), "-w"], { stdin: payload, netns: tool.netns });
  } catch (e) {
    throw withRestoreLine(e, payload);
  }
}

/** Rules of one chain via `iptables -S CHAIN`; `undefined` when the chain does not exist. */
export async function listChain(
  runner: Runner,
  tool: IptablesTool,
  table: string,
  chain: string,
): Promise<Rule[] | undefined> {
  const r = await runner.run([bin(tool, ""), "-w", "-t", table, "-S", chain], {
    readOnly: true,
    netns: tool.netns,
    okCodes: [0, 1],
  });
  if (r.code !== 0) return undefined;
  return parseListRules(r.stdout);
}

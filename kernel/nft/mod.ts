/**
 * nftables, the one layer both the proxy and the firewall use: the typed table state
 * (`table.ts`), whole-table and delta transactions with deferred stale-chain deletion
 * (`transaction.ts`), one `nft -f -` per transaction, where nft refused one, and the JSON listing
 * (`nft -j list ...`) parsed into the few facts callers need (tables, chains, sets, rule counts).
 * `fake.ts` is an in-memory nft for unit tests.
 *
 * @module
 */
import { ExecError, type Runner } from "../exec.ts";
export * from "./table.ts";
export * from "./transaction.ts";

/** Options for every call (a network namespace for tests). */
export interface NftTool {
  netns?: string;
}

/** nft address family of a table. */
export type NftFamily = "ip" | "ip6" | "inet" | "arp" | "bridge" | "netdev";

export interface NftTable {
  family: NftFamily;
  name: string;
}

export interface NftChain extends NftTable {
  table: string;
  hook?: string;
  type?: string;
  prio?: number;
}

export interface NftSet {
  family: NftFamily;
  table: string;
  name: string;
  type: string | string[];
  /** Elements as nft prints them in JSON (strings, prefixes, ranges as objects). */
  elem: unknown[];
}

export interface NftRuleset {
  tables: NftTable[];
  chains: NftChain[];
  sets: NftSet[];
  /** Rule count per `family table chain`. */
  ruleCounts: Map<string, number>;
}

/** Applies one script atomically with `nft -f -`. Throws `ExecError` naming the offending line. */
export async function apply(runner: Runner, script: string, tool: NftTool = {}): Promise<void> {
  if (script.trim() === "") return;
  await runner.run(["nft", "-f", "-"], { stdin: script, netns: tool.netns });
}

/** Parses `nft -j list ruleset|table ...` output. */
export function parseJson(text: string): NftRuleset {
  const out: NftRuleset = { tables: [], chains: [], sets: [], ruleCounts: new Map() };
  if (text.trim() === "") return out;
  const doc = JSON.parse(text) as { nftables?: Array<Record<string, Record<string, unknown>>> };
  for (const item of doc.nftables ?? []) {
    if (item.table) {
      out.tables.push({ family: item.table.family as NftFamily, name: String(item.table.name) });
    } else if (item.chain) {
      const c = item.chain;
      out.chains.push({
        family: c.family as NftFamily,
        table: String(c.table),
        name: String(c.name),
        hook: c.hook as string | undefined,
        type: c.type as string | undefined,
        prio: c.prio as number | undefined,
      });
    } else if (item.set) {
      const s = item.set;
      out.sets.push({
        family: s.family as NftFamily,
        table: String(s.table),
        name: String(s.name),
        type: s.type as string | string[],
        elem: (s.elem as unknown[]) ?? [],
      });
    } else if (item.rule) {
      const r = item.rule;
      const key = `${r.family} ${r.table} ${r.chain}`;
      out.ruleCounts.set(key, (out.ruleCounts.get(key) ?? 0) + 1);
    }
  }
  return out;
}

/** `nft -j list tables`. */
export async function listTables(runner: Runner, tool: NftTool = {}): Promise<NftTable[]> {
  const r = await runner.run(["nft", "-j", "list", "tables"], { readOnly: true, netns: tool.netns });
  return parseJson(r.stdout).tables;
}

/** `nft -j list table FAMILY NAME`; `undefined` when the table does not exist. */
export async function listTable(
  runner: Runner,
  family: NftFamily,
  name: string,
  tool: NftTool = {},
): Promise<NftRuleset | undefined> {
  const r = await runner.run(["nft", "-j", "list", "table", family, name], {
    readOnly: true,
    netns: tool.netns,
    okCodes: [0, 1],
  });
  if (r.code !== 0) return undefined;
  return parseJson(r.stdout);
}

/** `nft -j list ruleset`, parsed. */
export async function listRuleset(runner: Runner, tool: NftTool = {}): Promise<NftRuleset> {
  const r = await runner.run(["nft", "-j", "list", "ruleset"], { readOnly: true, netns: tool.netns });
  return parseJson(r.stdout);
}

/** Deletes tables that exist, in one transaction ("not found" is success). */
export async function deleteTables(
  runner: Runner,
  tables: readonly NftTable[],
  tool: NftTool = {},
): Promise<void> {
  if (tables.length === 0) return;
  const present = new Set((await listTables(runner, tool)).map((t) => `${t.family} ${t.name}`));
  const lines = tables.filter((t) => present.has(`${t.family} ${t.name}`)).map((t) =>
    `delete table ${t.family} ${t.name}`
  );
  if (lines.length) await apply(runner, lines.join("\n") + "\n", tool);
}

/**
 * Where nft refused a script: the line, and the text nft pointed at on it (for an element line,
 * the refused element's key: `/dev/stdin:3:52-70: Error: …`). Undefined for other errors.
 */
export function refusedAt(err: unknown): { line: number; text: string; span?: string } | undefined {
  if (!(err instanceof ExecError) || !err.offendingLine) return undefined;
  const { number, text } = err.offendingLine;
  const m = new RegExp(`(?:/dev/stdin|-):${number}:(\\d+)-(\\d+):`).exec(err.stderr);
  const span = m ? text.slice(Number(m[1]) - 1, Number(m[2])) : undefined;
  return { line: number, text, span };
}

/** Packets and bytes of one set element's counter. */
export interface ElementCounter {
  packets: number;
  bytes: number;
}

/** A JSON element key as nft -f writes it: concatenations joined with ` . `. */
function keyText(val: unknown): string {
  if (val && typeof val === "object" && "concat" in val) {
    return (val as { concat: unknown[] }).concat.map(keyText).join(" . ");
  }
  if (val && typeof val === "object" && "prefix" in val) {
    const p = (val as { prefix: { addr: string; len: number } }).prefix;
    return `${p.addr}/${p.len}`;
  }
  return String(val);
}

/**
 * The counters of the elements of sets declared with `counter`, read with ONE process
 * (`nft -j list sets table F N`: every set of the table with its elements, maps left out; nft
 * 1.0.6 cannot run several `list set` commands in one call): set name → element key (as
 * `nft -f` writes it) → packets and bytes. A missing table or set reads as empty.
 */
export async function readSetCounters(
  runner: Runner,
  table: { family: NftFamily; name: string },
  sets: readonly string[],
  tool: NftTool = {},
): Promise<Map<string, Map<string, ElementCounter>>> {
  const out = new Map<string, Map<string, ElementCounter>>(sets.map((s) => [s, new Map()]));
  if (sets.length === 0) return out;
  const r = await runner.run(["nft", "-j", "list", "sets", "table", table.family, table.name], {
    readOnly: true,
    netns: tool.netns,
    okCodes: [0, 1],
  });
  if (r.code !== 0) return out;
  for (const line of r.stdout.split("\n")) {
    if (!line.trim()) continue;
    const doc = JSON.parse(line) as { nftables?: Array<Record<string, Record<string, unknown>>> };
    for (const item of doc.nftables ?? []) {
      const s = item.set;
      if (!s || !out.has(String(s.name))) continue;
      const m = out.get(String(s.name))!;
      for (const e of (s.elem as Array<{ elem?: { val: unknown; counter?: ElementCounter } }>) ?? []) {
        if (e.elem?.counter) {
          m.set(keyText(e.elem.val), { packets: e.elem.counter.packets, bytes: e.elem.counter.bytes });
        }
      }
    }
  }
  return out;
}

/**
 * Policy-routing rules (`ip rule`): the overlay's `from <pod CIDR> lookup 77`, rendered for
 * `ip -batch` and parsed from `ip -j rule show`.
 *
 * @module
 */

export interface Rule {
  /** Source prefix, e.g. "10.244.1.0/24". */
  from: string;
  table: number;
  priority?: number;
}

interface JsonRule {
  priority?: number;
  src?: string;
  srclen?: number;
  table?: string;
}

const NAMED: Record<string, number> = { main: 254, local: 255, default: 253 };

/** Parses `ip [-4|-6] -j rule show`. */
export function parseRules(json: string): Rule[] {
  const text = json.trim();
  if (text === "") return [];
  const out: Rule[] = [];
  for (const r of JSON.parse(text) as JsonRule[]) {
    if (!r.src || r.src === "all" || r.table === undefined) continue;
    const from = r.srclen !== undefined
      ? `${r.src}/${r.srclen}`
      : r.src.includes("/")
      ? r.src
      : `${r.src}/${r.src.includes(":") ? 128 : 32}`;
    out.push({ from, table: NAMED[r.table] ?? Number(r.table), priority: r.priority });
  }
  return out;
}

export function listRulesArgv(family: 4 | 6): string[] {
  return ["ip", `-${family}`, "-j", "rule", "show"];
}

export function ruleKey(r: Rule): string {
  return `${r.from}>${r.table}`;
}

export function renderRuleAdd(r: Rule): string {
  return `rule add from ${r.from} lookup ${r.table}` +
    (r.priority !== undefined ? ` priority ${r.priority}` : "");
}

export function renderRuleDel(r: Rule): string {
  return `rule del from ${r.from} lookup ${r.table}`;
}

/**
 * Rules to add/remove so that, among rules pointing at `tables`, exactly `desired` exist. Rules
 * pointing at other tables are never considered.
 */
export function diffRules(
  desired: readonly Rule[],
  kernel: readonly Rule[],
  tables: ReadonlySet<number>,
): { add: Rule[]; remove: Rule[] } {
  const mine = kernel.filter((r) => tables.has(r.table));
  const have = new Set(mine.map(ruleKey));
  const want = new Set(desired.map(ruleKey));
  return {
    add: desired.filter((r) => !have.has(ruleKey(r))),
    remove: mine.filter((r) => !want.has(ruleKey(r))),
  };
}

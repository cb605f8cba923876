/**
 * Firewall-mark policy routing for the proxy's DSR director (upstream's table 78
 * `kube-router-dsr`): `ip rule fwmark <mark> lookup 78 priority 32764` per DSR mark, and a
 * `local default dev lo` route in table 78 so marked packets for a VIP that is on no interface
 * are delivered locally, where the IPVS fwmark service takes them.
 *
 * One `ip -4 -batch -` / `ip -6 -batch -` per family: inside a batch the family cannot be chosen
 * per line (`rule add from ::/0 ...` still adds an IPv4 rule), so each family is its own batch.
 * Ours = rules that look up table 78 with a firewall mark at priority 32764, and the one route
 * we add to table 78.
 *
 * (Kept apart from the router's `rule.ts`, which models `from <prefix>` rules only.)
 *
 * @module
 */
import type { Runner } from "../exec.ts";

/** Upstream's DSR routing table and its name in rt_tables. */
export const DSR_TABLE = 78;
export const DSR_TABLE_NAME = "kube-router-dsr";
/** Priority of the per-mark rules (upstream's). */
export const DSR_RULE_PRIORITY = 32764;

/** What `ip -j rule show` / `ip -j route show table 78` tell us about the DSR routing of one family. */
export interface DsrRouting {
  /** Marks with our rule, ascending. */
  marks: number[];
  /** Table 78 holds `local default dev lo`. */
  localRoute: boolean;
}

interface JsonRule {
  priority?: number;
  fwmark?: string;
  fwmask?: string;
  table?: string;
}

/** Whether a rule from `ip -j rule show` is one of ours. Pure. */
export function isOurRule(r: JsonRule): boolean {
  return r.priority === DSR_RULE_PRIORITY && r.fwmark !== undefined &&
    (r.table === String(DSR_TABLE) || r.table === DSR_TABLE_NAME);
}

/** Our marks from `ip -j rule show`. */
export function parseDsrRules(json: string): number[] {
  const text = json.trim();
  if (!text) return [];
  return (JSON.parse(text) as JsonRule[]).filter(isOurRule).map((r) => Number(r.fwmark)).sort((a, b) =>
    a - b
  );
}

/** Whether `ip -j route show table 78` holds the local default route through lo. */
export function parseDsrLocalRoute(json: string): boolean {
  const text = json.trim();
  if (!text) return false;
  return (JSON.parse(text) as Array<{ type?: string; dst?: string; dev?: string }>).some((r) =>
    r.type === "local" && r.dst === "default" && r.dev === "lo"
  );
}

function hex(mark: number): string {
  return `0x${mark.toString(16)}`;
}

/**
 * Lines of one family's batch turning `have` into `want`. `lo` is brought up (a `local` route
 * through a down `lo` is refused; it is up on any real node, so this is a no-op there).
 */
export function renderDsrRouting(have: DsrRouting, want: DsrRouting): string[] {
  const lines: string[] = [];
  const h = new Set(have.marks), w = new Set(want.marks);
  if (want.localRoute && !have.localRoute) {
    lines.push("link set lo up", `route replace local default dev lo table ${DSR_TABLE}`);
  }
  for (const m of want.marks) {
    if (!h.has(m)) lines.push(`rule add fwmark ${hex(m)} lookup ${DSR_TABLE} priority ${DSR_RULE_PRIORITY}`);
  }
  for (const m of have.marks) {
    if (!w.has(m)) lines.push(`rule del fwmark ${hex(m)} lookup ${DSR_TABLE} priority ${DSR_RULE_PRIORITY}`);
  }
  if (!want.localRoute && have.localRoute) lines.push(`route del local default dev lo table ${DSR_TABLE}`);
  return lines;
}

/** Reads one family's DSR routing (two read-only processes). */
export async function readDsrRouting(runner: Runner, family: 4 | 6): Promise<DsrRouting> {
  const rules = await runner.run(["ip", `-${family}`, "-j", "rule", "show"], { readOnly: true });
  const routes = await runner.run(["ip", `-${family}`, "-j", "route", "show", "table", String(DSR_TABLE)], {
    readOnly: true,
    okCodes: [0, 2], // "FIB table does not exist" before anything was added
  });
  // On "table does not exist" stdout is a bare "[".
  return {
    marks: parseDsrRules(rules.stdout),
    localRoute: routes.code === 0 && parseDsrLocalRoute(routes.stdout),
  };
}

/** Runs one family's lines as one `ip -<family> -batch -`; nothing when there are none. */
export async function applyDsrRouting(
  runner: Runner,
  family: 4 | 6,
  lines: readonly string[],
): Promise<boolean> {
  if (lines.length === 0) return false;
  await runner.run(["ip", `-${family}`, "-batch", "-"], { stdin: lines.join("\n") + "\n" });
  return true;
}

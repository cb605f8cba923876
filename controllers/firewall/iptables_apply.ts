/**
 * Applies a firewall plan with iptables + ipset, per sync:
 *
 * 1. one `ipset restore`: new sets created, changed sets filled under a temporary name and
 *    swapped in (a live set is never emptied), unchanged sets untouched;
 * 2. one `iptables-restore --noflush` per family: only chains whose rules changed are declared
 *    (flushed) and refilled, chains no longer planned are flushed and deleted, and the jumps from
 *    INPUT/FORWARD/OUTPUT are placed at position 1 exactly once;
 * 3. sets no longer referenced are destroyed (a second, small `ipset restore`, only when needed).
 *
 * What was applied is kept in memory, so an unchanged sync runs nothing at all. `verify()` (on
 * the periodic resync) reads the kernel cheaply and forgets whatever drifted, so the next apply
 * repairs it. A failed restore leaves the previous ruleset in place (iptables-restore commits a
 * table atomically; sets are filled before any swap) and the memory untouched.
 *
 * @module
 */
import type { Runner } from "../../kernel/exec.ts";
import * as ipt from "../../kernel/iptables/mod.ts";
import * as ipset from "../../kernel/ipset/mod.ts";
import type { FirewallPlan } from "./plan.ts";
import type { FamilyState, FwSet } from "./model.ts";
import type { Family } from "./net.ts";
import { isOurChain, isOurSet, tempSetName, TOP_CHAINS, topJumpComment } from "./names.ts";
import { ruleLine, ruleLineMemo } from "./iptables_render.ts";

export interface ApplyStats {
  /** Processes that changed the kernel in this apply. */
  restores: number;
  chainsWritten: number;
  chainsDeleted: number;
  setsWritten: number;
  setsDestroyed: number;
  rules: number;
  setEntries: number;
  /** Why destroying unused sets failed (they stay, and are retried next sync). */
  destroyError?: string;
}

/** Stats of an apply that has done nothing yet (both backends start from it). */
export function emptyApplyStats(): ApplyStats {
  return {
    restores: 0,
    chainsWritten: 0,
    chainsDeleted: 0,
    setsWritten: 0,
    setsDestroyed: 0,
    rules: 0,
    setEntries: 0,
  };
}

interface FamilyMemory {
  /** Chain → rendered rules (as one string) last applied. */
  chains: Map<string, string>;
  ruleCounts: Map<string, number>;
  /** Whether the built-in chains' jumps are known to be exactly at position 1 once. */
  jumpsOk: boolean;
}

/** Options of the iptables applier. */
export interface IptablesApplierOptions {
  backend: ipt.IptablesBackend;
  /** Above this many rules, `verify` lists only the top-level chains instead of saving the table. */
  fullVerifyMaxRules?: number;
  /** Receives the duration of each restore: `iptables_v4_restore`, `iptables_v6_restore`, `ipset_restore`. */
  observe?: (what: string, seconds: number) => void;
}

/** Whether a set's desired contents equal what was applied (element-wise: no giant strings). */
function sameSet(a: FwSet | undefined, b: FwSet): boolean {
  if (!a) return false;
  if (a === b || a.entries === b.entries) return a.kind === b.kind && a.family === b.family;
  if (a.kind !== b.kind || a.family !== b.family || a.entries.length !== b.entries.length) return false;
  for (let i = 0; i < a.entries.length; i++) if (a.entries[i] !== b.entries[i]) return false;
  return true;
}

/** The `ipset create` definition of a planned set (exported for the property test's check mode). */
export function setDefinition(s: FwSet): ipset.DesiredSet {
  const max = Math.max(65536, 2 ** Math.ceil(Math.log2(Math.max(1, s.entries.length) * 2)));
  return {
    name: s.name,
    type: s.kind === "ip" ? "hash:ip" : "hash:net",
    options: ["family", s.family === "ipv4" ? "inet" : "inet6", "hashsize", "1024", "maxelem", String(max)],
    entries: s.entries,
  };
}

/** The iptables/ipset applier; one per controller, holding what it last applied. */
export class IptablesApplier {
  private families = new Map<Family, FamilyMemory>();
  private sets = new Map<string, FwSet>();
  /** Our set names present in the kernel (learned at start, kept current). */
  private kernelSets: Set<string> | undefined;
  /** Rendered form of a rules array: plans reuse unchanged pods' chain arrays, so this skips re-rendering them. */
  private readonly renderMemo = new WeakMap<
    readonly unknown[],
    { family: Family; args: string[][]; key: string }
  >();
  private readonly lineMemo = ruleLineMemo();

  constructor(private readonly runner: Runner, private readonly opts: IptablesApplierOptions) {}

  private tool(family: Family): ipt.IptablesTool {
    return { family, backend: this.opts.backend };
  }

  /** Forgets everything, so the next apply re-reads the kernel and rewrites all our state. */
  reset(): void {
    this.families.clear();
    this.sets.clear();
    this.kernelSets = undefined;
  }

  /** `iptables-save -t filter`, timed for upstream's `controller_iptables_v4/v6_save_time`. */
  private async save(family: Family): Promise<Awaited<ReturnType<typeof ipt.save>>> {
    const t0 = performance.now();
    const dump = await ipt.save(this.runner, this.tool(family), "filter");
    this.opts.observe?.(`iptables_${family === "ipv4" ? "v4" : "v6"}_save`, (performance.now() - t0) / 1000);
    return dump;
  }

  /** Learns what of ours the kernel holds for a family (once, at start or after a failure). */
  private async discover(family: Family): Promise<FamilyMemory> {
    const dump = (await this.save(family))[0] ?? { name: "filter", chains: [], rules: [] };
    const mem: FamilyMemory = { chains: new Map(), ruleCounts: new Map(), jumpsOk: false };
    for (const c of dump.chains) {
      // Existing chains are rewritten on the first apply: mark them present but unknown.
      if (isOurChain(c.name)) mem.chains.set(c.name, "\0unknown");
    }
    return mem;
  }

  private async discoverSets(): Promise<Set<string>> {
    return new Set((await ipset.listNames(this.runner)).filter(isOurSet));
  }

  /** Applies a plan; returns what it did. Throws (with the previous state intact) on failure. */
  async apply(plan: FirewallPlan): Promise<ApplyStats> {
    const stats = emptyApplyStats();
    try {
      return await this.applyInner(plan, stats);
    } catch (e) {
      // The kernel kept its previous state, but our memory of it may be stale: re-read next time.
      this.reset();
      throw e;
    }
  }

  private async applyInner(plan: FirewallPlan, stats: ApplyStats): Promise<ApplyStats> {
    if (!this.kernelSets) this.kernelSets = await this.discoverSets();
    const kernelSets = this.kernelSets;

    // 1. Sets.
    const desiredSets = new Map<string, FwSet>();
    for (const f of plan.families) for (const s of f.sets.values()) desiredSets.set(s.name, s);
    const changed: ipset.DesiredSet[] = [];
    for (const s of desiredSets.values()) {
      stats.setEntries += s.entries.length;
      if (sameSet(this.sets.get(s.name), s) && kernelSets.has(s.name)) continue;
      changed.push(setDefinition(s));
    }
    if (changed.length) {
      const existing = new Map<string, { type: string }>();
      // Type is checked by name: ours encode family and kind in the hash, so a name keeps its type.
      for (const n of kernelSets) existing.set(n, { type: changed.find((c) => c.name === n)?.type ?? "" });
      const script = ipset.renderSwapScript({ sets: changed, existing, tempName: tempSetName });
      const t0 = performance.now();
      await ipset.restore(this.runner, script);
      // One restore carries both families' sets: its time counts for each family it touched.
      const seconds = (performance.now() - t0) / 1000;
      for (const fam of new Set(changed.map((c) => desiredSets.get(c.name)?.family ?? "ipv4"))) {
        this.opts.observe?.(`ipset_${fam === "ipv6" ? "v6" : "v4"}_restore`, seconds);
      }
      stats.restores++;
      stats.setsWritten = changed.length;
      for (const c of changed) {
        kernelSets.add(c.name);
        kernelSets.delete(tempSetName(c.name));
        this.sets.set(c.name, desiredSets.get(c.name)!);
      }
    }

    // 2. Chains, per family.
    for (const f of plan.families) {
      stats.rules += await this.applyFamily(f, stats);
    }

    // 3. Sets no longer used (now unreferenced).
    const stale = [...kernelSets].filter((n) => !desiredSets.has(n));
    if (stale.length) {
      stats.restores++;
      try {
        await ipset.restore(this.runner, stale.map((n) => `destroy ${n}`).join("\n") + "\n");
        stats.setsDestroyed = stale.length;
        for (const n of stale) {
          kernelSets.delete(n);
          this.sets.delete(n);
        }
      } catch (e) {
        // Our rules are in place; a set someone else still references is only garbage. Keep it
        // on the list and try again next sync rather than failing the sync forever.
        stats.destroyError = e instanceof Error ? e.message : String(e);
        this.kernelSets = await this.discoverSets();
        for (const n of stale) this.sets.delete(n);
      }
    }
    return stats;
  }

  private async applyFamily(f: FamilyState, stats: ApplyStats): Promise<number> {
    let mem = this.families.get(f.family);
    if (!mem) {
      mem = await this.discover(f.family);
      this.families.set(f.family, mem);
    }
    const replace = new Map<string, string[][]>();
    const rendered = new Map<string, string>();
    let rules = 0;
    for (const [name, chainRules] of f.chains) {
      rules += chainRules.length;
      let r = this.renderMemo.get(chainRules);
      if (!r || r.family !== f.family) {
        const lines = chainRules.map((x) => ruleLine(x, f.family, this.lineMemo));
        r = { family: f.family, args: lines.map((l) => l.args), key: lines.map((l) => l.line).join("\n") };
        this.renderMemo.set(chainRules, r);
      }
      rendered.set(name, r.key);
      if (mem.chains.get(name) !== r.key) replace.set(name, r.args);
    }
    const del = [...mem.chains.keys()].filter((n) => !f.chains.has(n));
    const edits: string[][] = [];
    if (!mem.jumpsOk) {
      for (const top of TOP_CHAINS) {
        const listed = await ipt.listChain(this.runner, this.tool(f.family), "filter", top.builtin) ?? [];
        edits.push(
          ...ipt.ensureJumpFirstEdits(listed, top.builtin, top.chain, [
            "-m",
            "comment",
            "--comment",
            topJumpComment(top.chain),
            "-j",
            top.chain,
          ]),
        );
      }
    }
    if (replace.size === 0 && del.length === 0 && edits.length === 0) {
      mem.jumpsOk = true;
      return rules;
    }
    const payload = ipt.renderNoflush({ table: "filter", replaceChains: replace, deleteChains: del, edits });
    const t0 = performance.now();
    await ipt.restoreNoflush(this.runner, this.tool(f.family), payload);
    this.opts.observe?.(
      `iptables_${f.family === "ipv4" ? "v4" : "v6"}_restore`,
      (performance.now() - t0) / 1000,
    );
    stats.restores++;
    stats.chainsWritten += replace.size;
    stats.chainsDeleted += del.length;
    for (const [n, k] of rendered) {
      mem.chains.set(n, k);
      mem.ruleCounts.set(n, f.chains.get(n)!.length);
    }
    for (const n of del) {
      mem.chains.delete(n);
      mem.ruleCounts.delete(n);
    }
    mem.jumpsOk = true;
    return rules;
  }

  /**
   * Checks cheaply that the kernel still holds what we applied, and forgets whatever drifted
   * (a chain with another rule count, a missing chain or set, a moved or duplicated jump), so
   * the next `apply` repairs exactly that. Returns the names found drifted.
   */
  async verify(): Promise<string[]> {
    const drifted: string[] = [];
    for (const [family, mem] of this.families) {
      const total = [...mem.ruleCounts.values()].reduce((a, b) => a + b, 0);
      const tool = this.tool(family);
      if (total <= (this.opts.fullVerifyMaxRules ?? 20000)) {
        const dump = (await this.save(family))[0] ?? { name: "filter", chains: [], rules: [] };
        const counts = new Map<string, number>();
        for (const c of dump.chains) counts.set(c.name, 0);
        for (const r of dump.rules) counts.set(r.chain, (counts.get(r.chain) ?? 0) + 1);
        for (const [name, want] of mem.ruleCounts) {
          if (counts.get(name) !== want) {
            drifted.push(`${family}:${name}`);
            mem.chains.delete(name);
          }
        }
        for (const top of TOP_CHAINS) {
          const rules = dump.rules.filter((r) => r.chain === top.builtin);
          const ours = rules.filter((r) => jumpTarget(r.args) === top.chain);
          if (ours.length !== 1 || jumpTarget(rules[0]?.args ?? []) !== top.chain) {
            drifted.push(`${family}:${top.builtin}`);
            mem.jumpsOk = false;
          }
        }
      } else {
        for (const top of TOP_CHAINS) {
          const rules = await ipt.listChain(this.runner, tool, "filter", top.chain);
          if (rules?.length !== mem.ruleCounts.get(top.chain)) {
            drifted.push(`${family}:${top.chain}`);
            mem.chains.delete(top.chain);
          }
          const b = await ipt.listChain(this.runner, tool, "filter", top.builtin) ?? [];
          const ours = b.filter((r) => jumpTarget(r.args) === top.chain);
          if (ours.length !== 1 || jumpTarget(b[0]?.args ?? []) !== top.chain) {
            drifted.push(`${family}:${top.builtin}`);
            mem.jumpsOk = false;
          }
        }
      }
    }
    if (this.kernelSets) {
      const headers = new Map((await ipset.listHeaders(this.runner)).map((h) => [h.name, h]));
      for (const name of [...this.sets.keys()]) {
        const h = headers.get(name);
        const wantCount = this.sets.get(name)!.entries.length;
        if (!h || h.entries !== wantCount) {
          drifted.push(`set:${name}`);
          this.sets.delete(name);
          if (!h) this.kernelSets.delete(name);
        }
      }
    }
    return drifted;
  }
}

const jumpTarget = ipt.jumpTarget;

/**
 * Removes every chain, jump and set this controller creates (per `isOurChain`/`isOurSet`) and
 * nothing else. "Not found" is success; safe to run repeatedly and with no plan.
 */
export async function cleanupIptables(
  runner: Runner,
  backend: ipt.IptablesBackend,
  families: readonly Family[] = ["ipv4", "ipv6"],
): Promise<{ chains: number; sets: number }> {
  let chains = 0;
  for (const family of families) {
    const tool = { family, backend };
    let dump: ipt.TableDump | undefined;
    try {
      dump = (await ipt.save(runner, tool, "filter"))[0];
    } catch {
      continue; // no such tool/family here: nothing of ours can exist
    }
    if (!dump) continue;
    const ours = dump.chains.map((c) => c.name).filter(isOurChain);
    const edits: string[][] = [];
    for (const r of dump.rules) {
      if (isOurChain(r.chain)) continue;
      const t = jumpTarget(r.args);
      if (t && isOurChain(t)) edits.push(["-D", r.chain, ...r.args]);
    }
    if (ours.length === 0 && edits.length === 0) continue;
    await ipt.restoreNoflush(
      runner,
      tool,
      ipt.renderNoflush({ table: "filter", replaceChains: new Map(), deleteChains: ours, edits }),
    );
    chains += ours.length;
  }
  const sets = (await ipset.listNames(runner).catch(() => [] as string[])).filter(isOurSet);
  if (sets.length) await ipset.restore(runner, sets.map((n) => `destroy ${n}`).join("\n") + "\n");
  return { chains, sets: sets.length };
}

/**
 * Applies a firewall plan with nftables (`--use-nftables-for-netpol`): per family, the whole
 * table `kube-router-filter-ipv4`/`-ipv6` rendered and loaded with one atomic `nft -f` (create,
 * delete, redefine in one transaction), and only when its text changed since the last apply.
 * `verify()` compares the kernel's chain and rule counts with what was applied.
 *
 * @module
 */
import type { Runner } from "../../kernel/exec.ts";
import * as nft from "../../kernel/nft/mod.ts";
import type { FirewallPlan } from "./plan.ts";
import type { Family } from "./net.ts";
import { NFT_TABLES } from "./names.ts";
import {
  type NftFamilyView,
  nftRenderMemo,
  nftView,
  renderNftDelta,
  renderNftTable,
  tableOf,
} from "./render_nft.ts";
import type { ApplyStats } from "./apply.ts";

/** The nftables applier; one per controller, holding what it last applied. */
export class NftApplier {
  private last = new Map<Family, NftFamilyView>();
  private started = false;
  /** Rendered rules by object identity (the plan reuses unchanged chains and rules). */
  private readonly memo = nftRenderMemo();

  constructor(private readonly runner: Runner) {}

  reset(): void {
    this.last.clear();
  }

  async apply(plan: FirewallPlan): Promise<ApplyStats> {
    const stats: ApplyStats = {
      restores: 0,
      chainsWritten: 0,
      chainsDeleted: 0,
      setsWritten: 0,
      setsDestroyed: 0,
      rules: 0,
      setEntries: 0,
    };
    const planned = new Set<Family>();
    for (const f of plan.families) {
      planned.add(f.family);
      for (const r of f.chains.values()) stats.rules += r.length;
      for (const s of f.sets.values()) stats.setEntries += s.entries.length;
      const view = nftView(f, this.memo);
      const prev = this.last.get(f.family);
      let script: string;
      try {
        script = prev ? renderNftDelta(prev, view) : renderNftTable(view);
      } catch {
        script = renderNftTable(view); // a change a delta cannot express: reload the table
      }
      if (script === "") continue;
      try {
        await nft.apply(this.runner, script);
      } catch (e) {
        // The transaction did not commit; re-read nothing, just reload the whole table next time.
        this.last.delete(f.family);
        throw e;
      }
      stats.restores++;
      for (const [n, c] of view.chains) {
        const o = prev?.chains.get(n);
        if (!o || o.rules.length !== c.rules.length || o.rules.some((r, i) => r !== c.rules[i])) {
          stats.chainsWritten++;
        }
      }
      for (const [n, s] of view.sets) {
        const o = prev?.sets.get(n);
        if (!o || o.elements.length !== s.elements.length || o.elements.some((e, i) => e !== s.elements[i])) {
          stats.setsWritten++;
        }
      }
      if (prev) {
        for (const n of prev.chains.keys()) if (!view.chains.has(n)) stats.chainsDeleted++;
        for (const n of prev.sets.keys()) if (!view.sets.has(n)) stats.setsDestroyed++;
      }
      this.last.set(f.family, view);
    }
    // A family no longer enabled: remove its table.
    const gone = NFT_TABLES.filter((t) =>
      !planned.has(t.ipFamily) && (!this.started || this.last.has(t.ipFamily))
    );
    if (gone.length) {
      await nft.deleteTables(this.runner, gone);
      for (const t of gone) this.last.delete(t.ipFamily);
    }
    this.started = true;
    return stats;
  }

  /** Forgets families whose table drifted (missing chain, other rule count); returns them. */
  async verify(): Promise<string[]> {
    const drifted: string[] = [];
    for (const [family, view] of this.last) {
      const t = tableOf(family);
      const got = await nft.listTable(this.runner, t.family, t.name);
      let ok = !!got;
      if (got) {
        for (const [chain, c] of view.chains) {
          if ((got.ruleCounts.get(`${t.family} ${t.name} ${chain}`) ?? 0) !== c.rules.length) ok = false;
          if (!got.chains.some((x) => x.name === chain)) ok = false;
        }
        for (const name of view.sets.keys()) if (!got.sets.some((x) => x.name === name)) ok = false;
      }
      if (!ok) {
        drifted.push(`${t.family} ${t.name}`);
        this.last.delete(family);
      }
    }
    return drifted;
  }
}

/** Deletes the nft backend's tables ("not found" is success). */
export async function cleanupNft(runner: Runner): Promise<number> {
  let tables: nft.NftTable[];
  try {
    tables = await nft.listTables(runner);
  } catch {
    return 0; // no nft here: nothing of ours can exist
  }
  const ours = NFT_TABLES.filter((t) => tables.some((x) => x.family === t.family && x.name === t.name));
  await nft.deleteTables(runner, ours);
  return ours.length;
}

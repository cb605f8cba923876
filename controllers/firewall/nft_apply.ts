/**
 * Applies a firewall plan with nftables (`--use-nftables-for-netpol`): per family, the whole
 * table `kube-router-filter-ipv4`/`-ipv6` rendered and loaded with one atomic `nft -f` (create,
 * delete, redefine in one transaction) on the first apply, then only the delta from what was
 * applied (`kernel/nft`'s `NftTableSync`), and nothing when nothing changed. `verify()` compares
 * the kernel's chain and rule counts with what was applied.
 *
 * @module
 */
import type { Runner } from "../../kernel/exec.ts";
import * as nft from "../../kernel/nft/mod.ts";
import type { FirewallPlan } from "./plan.ts";
import type { Family } from "./net.ts";
import { NFT_TABLES } from "./names.ts";
import { nftRenderMemo, nftView, tableOf } from "./nft_render.ts";
import { type ApplyStats, emptyApplyStats } from "./iptables_apply.ts";

/** The nftables applier; one per controller, holding what it last applied. */
export class NftApplier {
  private readonly tables = new Map<Family, nft.NftTableSync>();
  private started = false;
  /** Rendered rules by object identity (the plan reuses unchanged chains and rules). */
  private readonly memo = nftRenderMemo();

  constructor(private readonly runner: Runner, private readonly syncOptions: nft.NftTableSyncOptions = {}) {}

  private sync(family: Family): nft.NftTableSync {
    let s = this.tables.get(family);
    if (!s) this.tables.set(family, s = new nft.NftTableSync(this.syncOptions));
    return s;
  }

  reset(): void {
    for (const s of this.tables.values()) s.invalidate();
  }

  async apply(plan: FirewallPlan): Promise<ApplyStats> {
    const stats = emptyApplyStats();
    const planned = new Set<Family>();
    for (const f of plan.families) {
      planned.add(f.family);
      for (const r of f.chains.values()) stats.rules += r.length;
      for (const s of f.sets.values()) stats.setEntries += s.entries.length;
      const view = nftView(f, this.memo);
      const sync = this.sync(f.family);
      const prev = sync.applied;
      // A change a delta cannot express (a set's type, a chain's hook) reloads the table whole.
      const tx = sync.transaction(view);
      if (tx.script === "") continue;
      try {
        await nft.apply(this.runner, tx.script);
      } catch (e) {
        // The transaction did not commit; re-read nothing, just reload the whole table next time.
        sync.invalidate();
        throw e;
      }
      tx.commit();
      stats.restores++;
      for (const [n, c] of view.chains) {
        const o = prev?.chains.get(n);
        if (!o || o.rules.length !== c.rules.length || o.rules.some((r, i) => r !== c.rules[i])) {
          stats.chainsWritten++;
        }
      }
      for (const [n, s] of view.sets) {
        const o = prev?.sets.get(n);
        if (
          !o || o.elements.size !== s.elements.size || [...s.elements.keys()].some((e) => !o.elements.has(e))
        ) {
          stats.setsWritten++;
        }
      }
      if (prev) {
        for (const n of prev.chains.keys()) if (!view.chains.has(n)) stats.chainsDeleted++;
        for (const n of prev.sets.keys()) if (!view.sets.has(n)) stats.setsDestroyed++;
      }
    }
    // A family no longer enabled: remove its table.
    const gone = NFT_TABLES.filter((t) =>
      !planned.has(t.ipFamily) && (!this.started || this.tables.get(t.ipFamily)?.applied)
    );
    if (gone.length) {
      await nft.deleteTables(this.runner, gone);
      for (const t of gone) this.tables.get(t.ipFamily)?.invalidate();
    }
    this.started = true;
    return stats;
  }

  /** Forgets families whose table drifted (missing chain, other rule count); returns them. */
  async verify(): Promise<string[]> {
    const drifted: string[] = [];
    for (const [family, sync] of this.tables) {
      const view = sync.applied;
      if (!view) continue;
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
        sync.invalidate();
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

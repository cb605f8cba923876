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
import { renderNftTable, tableOf } from "./render_nft.ts";
import type { ApplyStats } from "./apply.ts";

/** The nftables applier; one per controller, holding what it last applied. */
export class NftApplier {
  private last = new Map<Family, { text: string; counts: Map<string, number> }>();
  private started = false;

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
      const text = renderNftTable(f);
      if (this.last.get(f.family)?.text === text) continue;
      try {
        await nft.apply(this.runner, text);
      } catch (e) {
        this.last.delete(f.family);
        throw e;
      }
      stats.restores++;
      stats.chainsWritten += f.chains.size;
      stats.setsWritten += f.sets.size;
      this.last.set(f.family, {
        text,
        counts: new Map([...f.chains].map(([n, r]) => [n, r.length])),
      });
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
    for (const [family, mem] of this.last) {
      const t = tableOf(family);
      const got = await nft.listTable(this.runner, t.family, t.name);
      let ok = !!got;
      if (got) {
        for (const [chain, want] of mem.counts) {
          if ((got.ruleCounts.get(`${t.family} ${t.name} ${chain}`) ?? 0) !== want) ok = false;
          if (!got.chains.some((c) => c.name === chain)) ok = false;
        }
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

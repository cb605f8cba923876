/**
 * Applies the nftables mode: one `nft -f` transaction per sync covering both families. The first
 * sync (and the first after a failure) replaces our tables whole; later ones send only what
 * changed against the state we last applied, which is kept in memory. A failed transaction
 * changes nothing in the kernel (nft commits atomically) and forgets the remembered state, so the
 * next sync starts over with a full replace.
 *
 * @module
 */
import type { Runner } from "../../kernel/exec.ts";
import * as nft from "../../kernel/nft/mod.ts";
import type { Family } from "./ip.ts";
import { NFT_TABLE, type NftFamilyState, renderFull, renderIncremental, renderState } from "./nft_render.ts";
import type { ProxyPlan } from "./types.ts";

export interface NftApplyResult {
  /** The transaction sent ("" when nothing changed and nothing ran). */
  script: string;
  full: boolean;
}

export class NftApplier {
  #last = new Map<Family, NftFamilyState>();
  /** True until a transaction succeeds (and again after a failure): then tables are replaced whole. */
  #fresh = true;

  constructor(private readonly runner: Runner, private readonly families: readonly Family[]) {}

  /** Forgets what was applied: the next `apply` replaces the tables whole. */
  invalidate(): void {
    this.#last.clear();
    this.#fresh = true;
  }

  /** The transaction for `plan` without running it (for benchmarks and golden tests). */
  render(plan: ProxyPlan): { script: string; full: boolean; states: Map<Family, NftFamilyState> } {
    const states = new Map<Family, NftFamilyState>();
    let script = "";
    let full = false;
    for (const f of [4, 6] as const) {
      if (!this.families.includes(f)) {
        // A table left from an earlier run with this family enabled goes on the first sync.
        if (this.#fresh) {
          const t = `${f === 4 ? "ip" : "ip6"} ${NFT_TABLE}`;
          script += `add table ${t}\ndelete table ${t}\n`;
        }
        continue;
      }
      const next = renderState(plan, f);
      states.set(f, next);
      const last = this.#last.get(f);
      const inc = last ? renderIncremental(last, next) : undefined;
      if (inc !== undefined) script += inc;
      else {
        script += renderFull(next);
        full = true;
      }
    }
    return { script, full, states };
  }

  /** Applies the plan; runs nothing when nothing changed. */
  async apply(plan: ProxyPlan): Promise<NftApplyResult> {
    const { script, full, states } = this.render(plan);
    if (script === "") return { script, full };
    try {
      await nft.apply(this.runner, script);
    } catch (e) {
      this.invalidate();
      throw e;
    }
    this.#last = states;
    this.#fresh = false;
    return { script, full };
  }

  /** Whether our tables are still there (a periodic check; someone may have flushed the ruleset). */
  async present(): Promise<boolean> {
    const tables = await nft.listTables(this.runner);
    return this.families.every((f) =>
      tables.some((t) => t.name === NFT_TABLE && t.family === (f === 4 ? "ip" : "ip6"))
    );
  }
}

/** Removes our nftables tables (both families); "not found" is success. */
export async function nftCleanup(runner: Runner): Promise<void> {
  await nft.deleteTables(runner, [{ family: "ip", name: NFT_TABLE }, { family: "ip6", name: NFT_TABLE }]);
}

/**
 * Applies the nftables mode: one `nft -f` transaction per sync covering both families. The first
 * sync (and the first after a failure) replaces our tables whole. Later ones send only what
 * changed: the small shared part (chains, affinity sets, hairpin and reject sets) is diffed whole
 * against what we last applied, and the two big maps (`service-ips`, `endpoints`) are diffed only
 * for the virtual services whose objects changed since the last applied plan (the planner reuses
 * unchanged ones), so one endpoint change costs a few element updates whatever the table's size.
 *
 * A failed transaction changes nothing in the kernel (nft commits atomically) and forgets the
 * remembered state, so the next sync starts over with a full replace. Transactions come from
 * `kernel/nft` (`NftTableSync` per family), which also defers deleting chains a map element
 * pointed at (affinity `svc-…` chains, spread chains beyond the preset) by one transaction.
 *
 * @module
 */
import type { Runner } from "../../kernel/exec.ts";
import * as nft from "../../kernel/nft/mod.ts";
import type { Family } from "./ip.ts";
import {
  elementLines,
  needsFullReplace,
  NFT_TABLE,
  type NftFamilyState,
  renderShared,
  renderState,
  STATS_SETS,
  vsFragment,
} from "./nft_render.ts";
import type { ProxyPlan, VirtualService } from "./types.ts";

export interface NftApplyResult {
  /** The transaction sent ("" when nothing changed and nothing ran). */
  script: string;
  full: boolean;
}

function famName(f: Family): "ip" | "ip6" {
  return f === 4 ? "ip" : "ip6";
}

/** Element updates of the big maps and the counter sets for the virtual services that changed. */
export function vsDeltas(
  last: readonly VirtualService[],
  next: readonly VirtualService[],
  f: Family,
): { deletes: string[]; adds: string[] } {
  const before = new Set(last), after = new Set(next);
  const sets = ["service-ips", "endpoints", ...STATS_SETS] as const;
  const collect = (list: readonly VirtualService[], other: Set<VirtualService>) => {
    const m = new Map<string, Map<string, string>>(sets.map((s) => [s, new Map()]));
    for (const vs of list) {
      if (vs.family !== f || other.has(vs)) continue;
      const fr = vsFragment(vs);
      for (const [k, v] of fr.serviceIps) m.get("service-ips")!.set(k, v);
      for (const [k, v] of fr.endpoints) m.get("endpoints")!.set(k, v);
      for (const s of STATS_SETS) for (const k of fr.stats) m.get(s)!.set(k, "");
    }
    return m;
  };
  const gone = collect(last, after), come = collect(next, before);
  const deletes: string[] = [], adds: string[] = [];
  for (const set of sets) {
    const a = gone.get(set)!, b = come.get(set)!;
    const del: string[] = [], add: string[] = [];
    for (const [k, v] of a) if (b.get(k) !== v) del.push(k);
    // A set element that stays keeps its counter: neither deleted nor re-added.
    for (const [k, v] of b) if (a.get(k) !== v) add.push(v === "" ? k : `${k} : ${v}`);
    deletes.push(...elementLines("delete", famName(f), set, del));
    adds.push(...elementLines("add", famName(f), set, add));
  }
  return { deletes, adds };
}

export class NftApplier {
  /** The plan last applied; undefined until a transaction succeeds. */
  #last?: ProxyPlan;
  /** True until a transaction succeeds (and again after a failure): then tables are replaced whole. */
  #fresh = true;
  readonly #tables = new Map<Family, nft.NftTableSync>();

  constructor(
    private readonly runner: Runner,
    private readonly families: readonly Family[],
    syncOptions: nft.NftTableSyncOptions = {},
  ) {
    for (const f of [4, 6] as const) this.#tables.set(f, new nft.NftTableSync(syncOptions));
  }

  /** Forgets what was applied: the next `apply` replaces the tables whole. */
  invalidate(): void {
    this.#last = undefined;
    this.#fresh = true;
    for (const t of this.#tables.values()) t.invalidate();
  }

  /** Chains flushed and waiting for deletion, per family (see `kernel/nft/transaction.ts`). */
  staleChains(f: Family): ReadonlySet<string> {
    return this.#tables.get(f)!.staleChains;
  }

  /** The transaction for `plan` without running it (for benchmarks and golden tests). */
  render(plan: ProxyPlan): { script: string; full: boolean; shared: Map<Family, NftFamilyState> } {
    const { script, full, shared } = this.#transaction(plan);
    return { script, full, shared };
  }

  #transaction(plan: ProxyPlan) {
    const shared = new Map<Family, NftFamilyState>();
    const commits: Array<() => void> = [];
    let script = "";
    let full = false;
    for (const f of [4, 6] as const) {
      if (!this.families.includes(f)) {
        // A table left from an earlier run with this family enabled goes on the first sync.
        if (this.#fresh) script += nft.dropTableTransaction({ family: famName(f), name: NFT_TABLE });
        continue;
      }
      const sh = renderShared(plan, f);
      shared.set(f, sh);
      const sync = this.#tables.get(f)!;
      const last = this.#last;
      const replace = !last || this.#fresh || !sync.applied || needsFullReplace(sync.applied, sh);
      const tx = sync.transaction(sh, {
        full: replace,
        fullTable: replace ? renderState(plan, f) : undefined,
        extra: replace ? undefined : vsDeltas(last!.services, plan.services, f),
      });
      script += tx.script;
      full ||= tx.full;
      commits.push(tx.commit);
    }
    return { script, full, shared, commit: () => commits.forEach((c) => c()) };
  }

  /** Applies the plan; runs nothing when nothing changed. */
  async apply(plan: ProxyPlan): Promise<NftApplyResult> {
    const { script, full, commit } = this.#transaction(plan);
    if (script !== "") {
      try {
        await nft.apply(this.runner, script);
      } catch (e) {
        this.invalidate();
        throw e;
      }
    }
    commit();
    this.#last = plan;
    this.#fresh = false;
    return { script, full };
  }

  /** Whether our tables are still there (a periodic check; someone may have flushed the ruleset). */
  async present(): Promise<boolean> {
    const tables = await nft.listTables(this.runner);
    return this.families.every((f) => tables.some((t) => t.name === NFT_TABLE && t.family === famName(f)));
  }
}

/** Removes our nftables tables (both families); "not found" is success. */
export async function nftCleanup(runner: Runner): Promise<void> {
  await nft.deleteTables(runner, [{ family: "ip", name: NFT_TABLE }, { family: "ip6", name: NFT_TABLE }]);
}

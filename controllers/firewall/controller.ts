/**
 * The network policy firewall controller: plans from each snapshot and applies through the
 * iptables/ipset backend (default) or the nftables backend (`--use-nftables-for-netpol`).
 * At its first sync it removes the other backend's state, as upstream does.
 *
 * @module
 */
import { countSkippedObject, kindOfReference } from "../../observe/problems.ts";
import type { CleanupFn, Controller, ControllerContext } from "../controller.ts";
import { detectIptablesBackend, type IptablesBackend } from "../../kernel/iptables/mod.ts";
import type { ClusterSnapshot, ResourceKind } from "../../watch/types.ts";
import { cleanupIptables, IptablesApplier } from "./apply.ts";
import { cleanupNft, NftApplier } from "./apply_nft.ts";
import { type FirewallPlan, FirewallPlanner } from "./plan.ts";
import { instanceOf, type Refused, refusedObject, withoutRefused } from "./contain.ts";
import type { Family } from "./net.ts";

const KINDS: ReadonlySet<ResourceKind> = new Set(["Pod", "Namespace", "NetworkPolicy", "Node"]);

/** Options beyond the agent's flags (for tests and the benchmark). */
export interface FirewallControllerExtras {
  /** iptables backend; default: what `iptables -V` reports (nf_tables or legacy). */
  iptablesBackend?: IptablesBackend;
  /** Clock for the periodic verification (ms); default `Date.now`. */
  now?: () => number;
}

/** Which iptables backend the host's default `iptables` uses. */

function families(ctx: ControllerContext): Family[] {
  const out: Family[] = [];
  if (ctx.options.enableIpv4) out.push("ipv4");
  if (ctx.options.enableIpv6) out.push("ipv6");
  return out;
}

/** The firewall controller. */
export class FirewallController implements Controller {
  readonly name = "firewall";
  readonly syncPeriodMs: number;
  private applier: IptablesApplier | NftApplier | undefined;
  private lastRevision = -1;
  private lastVerify = 0;
  private reported = new Set<string>();
  /** Objects whose lines a tool refused, left out until they change or the next resync (contain.ts). */
  readonly refused = new Map<string, Refused>();
  /** The last plan applied (for tests and debugging). */
  lastPlan: FirewallPlan | undefined;
  /** This controller's planner: its memo lives as long as the controller. */
  readonly #planner = new FirewallPlanner();
  readonly #now: () => number;
  /** Revision of the last snapshot applied successfully (-1 before the first). */
  get appliedRevision(): number {
    return this.lastRevision;
  }

  constructor(
    private readonly ctx: ControllerContext,
    private readonly extras: FirewallControllerExtras = {},
  ) {
    this.syncPeriodMs = ctx.options.iptablesSyncPeriod;
    this.#now = extras.now ?? Date.now;
  }

  interestedIn(kinds: ReadonlySet<ResourceKind>): boolean {
    for (const k of kinds) if (KINDS.has(k)) return true;
    return false;
  }

  private async init(): Promise<IptablesApplier | NftApplier> {
    const { runner, options, log } = this.ctx;
    const backend = this.extras.iptablesBackend ?? await detectIptablesBackend(runner);
    if (options.useNftablesForNetpol) {
      const removed = await cleanupIptables(runner, backend, families(this.ctx));
      if (removed.chains || removed.sets) {
        log.info("removed iptables netpol state of the other backend {removed}", { removed });
      }
      return new NftApplier(runner);
    }
    const removed = await cleanupNft(runner);
    if (removed) log.info("removed {removed} nftables netpol tables of the other backend", { removed });
    const metrics = this.ctx.metrics;
    // Upstream's metric names (kube_router_controller_iptables_v4_restore_time, ...).
    const names: Record<string, string> = {
      iptables_v4_restore: "kube_router_controller_iptables_v4_restore_time",
      iptables_v6_restore: "kube_router_controller_iptables_v6_restore_time",
      iptables_v4_save: "kube_router_controller_iptables_v4_save_time",
      iptables_v6_save: "kube_router_controller_iptables_v6_save_time",
      ipset_v4_restore: "kube_router_controller_policy_ipset_v4_restore_time",
      ipset_v6_restore: "kube_router_controller_policy_ipset_v6_restore_time",
    };
    return new IptablesApplier(runner, {
      backend,
      observe: (what, seconds) => {
        const name = names[what];
        if (name) metrics.histogram(name, `Time to run ${what.replaceAll("_", " ")}`).observe(seconds);
      },
    });
  }

  async sync(snapshot: ClusterSnapshot, _signal: AbortSignal): Promise<void> {
    const { options, nodeName, log, metrics } = this.ctx;
    const start = performance.now();
    this.applier ??= await this.init();
    // A sync without a new snapshot is the periodic resync: check the kernel for drift first.
    const now = this.#now();
    if (snapshot.revision === this.lastRevision || now - this.lastVerify >= this.syncPeriodMs) {
      this.lastVerify = now;
      const drifted = await this.applier.verify();
      if (drifted.length) log.warn("firewall state drifted, repairing {drifted}", { drifted });
    }
    // At the periodic resync, refused objects get another chance.
    for (const [k, r] of this.refused) if (now - r.since >= this.syncPeriodMs) this.refused.delete(k);
    const planStart = performance.now();
    let plan = this.#planner.plan(withoutRefused(snapshot, this.refused), options, nodeName);
    // Upstream's "policy chains sync" is the building of every chain in memory: our plan.
    metrics.histogram("kube_router_controller_policy_chains_sync_time", "Time to plan the policy chains")
      .observe((performance.now() - planStart) / 1000);
    for (const p of plan.problems) {
      const key = `${p.object} ${p.field} ${p.value}`;
      if (this.reported.has(key)) continue;
      this.reported.add(key);
      countSkippedObject(kindOfReference(p.object, "NetworkPolicy"), "invalid-field");
      log.warn("{object}: {field} {value}: {reason}", { ...p });
    }
    let stats;
    for (let attempt = 0;; attempt++) {
      try {
        stats = await this.applier.apply(plan);
        break;
      } catch (e) {
        // A refused line is traced to its object, which is left out; the rest is applied.
        const object = attempt < 8 ? refusedObject(e, plan) : undefined;
        if (!object || this.refused.has(object)) throw e;
        const reason = (e as Error).message;
        this.refused.set(object, { object, instance: instanceOf(snapshot, object), since: now, reason });
        metrics.counter(
          "kube_router_firewall_objects_refused_total",
          "Objects left out of the firewall because a tool refused their rules",
        ).inc({ kind: object.split(" ")[0] });
        log.error(
          "{object} left out of the firewall: the kernel tool refused its rules ({reason}); " +
            "{effect}; the rest is applied, and it is retried when it changes or at the next resync",
          {
            object,
            reason,
            effect: object.startsWith("NetworkPolicy")
              ? "it still isolates the pods it selects, allowing nothing"
              : "its pod chain is not programmed",
          },
        );
        plan = this.#planner.plan(withoutRefused(snapshot, this.refused), options, nodeName);
      }
    }
    metrics.gauge("kube_router_firewall_objects_refused", "Objects currently left out of the firewall")
      .set(this.refused.size);
    this.ctx.healthNote?.(
      [...this.refused.values()].map((r) =>
        `firewall: ${r.object} left out (the kernel tool refused it): ${r.reason}`
      ),
    );
    this.lastPlan = plan;
    this.lastRevision = snapshot.revision;
    const seconds = (performance.now() - start) / 1000;
    metrics.histogram("kube_router_controller_iptables_sync_time", "Time to sync the network policy firewall")
      .observe(seconds);
    metrics.gauge("kube_router_controller_policy_chains", "Active policy chains").set(
      plan.families.reduce((n, f) => n + f.chains.size, 0),
    );
    metrics.gauge("kube_router_controller_policy_ipsets", "Active policy ipsets").set(
      plan.families.reduce((n, f) => n + f.sets.size, 0),
    );
    if (stats.restores > 0) {
      log.debug(
        "applied {restores} kernel transactions in {ms} ms: wrote {chainsWritten} chains ({rules} rules) " +
          "and {setsWritten} sets ({setEntries} entries), removed {chainsDeleted} chains and {setsDestroyed} sets",
        { ...stats, ms: Math.round(seconds * 1000) },
      );
    }
  }
}

/** Creates the firewall controller. */
export function createFirewallController(
  ctx: ControllerContext,
  extras: FirewallControllerExtras = {},
): FirewallController {
  return new FirewallController(ctx, extras);
}

/**
 * Removes every chain, jump rule, ipset and nftables table this controller creates, for both
 * backends, and nothing else. Idempotent; needs no snapshot.
 */
export const firewallCleanup: CleanupFn = async (ctx) => {
  const backend = await detectIptablesBackend(ctx.runner);
  const fams: Family[] = ["ipv4", "ipv6"];
  const r = await cleanupIptables(ctx.runner, backend, fams);
  const t = await cleanupNft(ctx.runner);
  ctx.log.info(
    `firewall cleanup ${
      ctx.dryRun ? "would remove" : "removed"
    } {chains} chains, {sets} sets, {tables} nft tables`,
    {
      chains: r.chains,
      sets: r.sets,
      tables: t,
    },
  );
};

/**
 * The LoadBalancer IP allocator (`--run-loadbalancer`): one leader per cluster, elected on the
 * Lease `kube-router-lballoc` (15 s lease, 10 s renew deadline, 2 s retry, as upstream), assigns
 * addresses from `--loadbalancer-ip-range` to the LoadBalancer services it handles and writes
 * them to `status.loadBalancer.ingress` (the status subresource, with the service's
 * resourceVersion, so a stale leader's write is rejected rather than overwriting).
 *
 * It programs nothing on the host; the routing controller advertises the assigned IPs
 * (`--advertise-loadbalancer-ip` or the per-service annotation).
 *
 * @module
 */
import "../../observe/quiet_node.ts"; // before client-node loads
import * as k8s from "@kubernetes/client-node";
import type { ClusterSnapshot, ResourceKind } from "../../watch/types.ts";
import type { CleanupFn, Controller, ControllerContext } from "../controller.ts";
import { allocate, type Allocation, handles, parsePools } from "./allocate.ts";
import { LeaderElector, type LeaseTiming, UPSTREAM_TIMING } from "./lease.ts";
import { type Lane, openLane } from "../runner.ts";

export { allocate, handles, LB_CLASS, parsePools } from "./allocate.ts";
export { LeaderElector, UPSTREAM_TIMING } from "./lease.ts";

export const LEASE_NAME = "kube-router-lballoc";

export interface LoadBalancerDeps {
  /** Client configuration; default `ctx.api` (the agent's KubeConfig). */
  kubeConfig?: k8s.KubeConfig;
  /** Lease namespace; default `POD_NAMESPACE`, else `kube-system`. */
  namespace?: string;
  /** Candidate identity; default `<node name>-<random>`. */
  identity?: string;
  timing?: LeaseTiming;
  /** Release the lease when stopping (default true; false simulates a crash in tests). */
  releaseOnStop?: boolean;
}

export class LoadBalancerController implements Controller {
  readonly name = "loadbalancer";
  readonly syncPeriodMs: number;
  readonly identity: string;
  #elector: LeaderElector | null = null;
  #abort = new AbortController();
  #loop: Promise<void> | null = null;
  #core: k8s.CoreV1Api | null = null;
  #last: ClusterSnapshot | null = null;
  #kc: k8s.KubeConfig | undefined;
  #problems = new Set<string>();
  /** Every path into an allocation pass: the spine's `sync` and gaining the lease; never two at once. */
  #lane: Lane | undefined;
  /** Allocations written (tests). */
  written = 0;

  constructor(readonly ctx: ControllerContext, readonly deps: LoadBalancerDeps = {}) {
    this.syncPeriodMs = ctx.options.loadbalancerSyncPeriod;
    this.identity = deps.identity ?? `${ctx.nodeName}-${crypto.randomUUID().slice(0, 8)}`;
    this.#kc = deps.kubeConfig ?? ctx.api;
  }

  get leading(): boolean {
    return this.#elector?.leading ?? false;
  }

  interestedIn(kinds: ReadonlySet<ResourceKind>): boolean {
    return kinds.has("Service");
  }

  start(signal: AbortSignal): Promise<void> {
    if (!this.#kc) {
      this.ctx.log.warn("loadbalancer: no API access (--manifests?): the allocator does not run", {});
      return Promise.resolve();
    }
    signal.addEventListener("abort", () => this.#abort.abort(), { once: true });
    this.#core = this.#kc.makeApiClient(k8s.CoreV1Api);
    this.#elector = new LeaderElector({
      kubeConfig: this.#kc,
      namespace: this.deps.namespace ?? (Deno.env.get("POD_NAMESPACE") || "kube-system"),
      name: LEASE_NAME,
      identity: this.identity,
      timing: this.deps.timing ?? UPSTREAM_TIMING,
      onStartedLeading: () => {
        // Catch up at once with the last snapshot we saw.
        if (this.#last) this.#syncLane().trigger();
      },
      onStoppedLeading: () => {},
      log: (level, msg) => level === "info" ? this.ctx.log.info(msg, {}) : this.ctx.log.warn(msg, {}),
    });
    if (this.deps.releaseOnStop === false) this.#elector.release = () => Promise.resolve();
    this.#loop = this.#elector.run(this.#abort.signal);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
    await this.#lane?.stop();
    this.#lane = undefined;
  }

  #syncLane(): Lane {
    this.#lane ??= openLane(
      this.ctx,
      this.name,
      "sync",
      () => this.#last ? this.#sync(this.#last) : Promise.resolve(),
      { health: true },
    );
    return this.#lane;
  }

  #logError(e: unknown): void {
    this.ctx.log.error("loadbalancer: {error}", { error: (e as Error).message });
  }

  sync(snapshot: ClusterSnapshot, _signal: AbortSignal): Promise<void> {
    this.#last = snapshot;
    return this.#syncLane().run();
  }

  async #sync(snapshot: ClusterSnapshot): Promise<void> {
    if (this.ctx.dryRun) return this.#describe(snapshot);
    if (!this.leading || !this.#core) return;
    const problems: string[] = [];
    const pools = parsePools(this.ctx.options.loadbalancerIpRange, problems);
    const allocs = allocate(
      snapshot.services.values(),
      pools,
      this.ctx.options.loadbalancerDefaultClass,
      problems,
    );
    // Each problem is logged when it appears, not on every resync.
    for (const p of problems) {
      if (!this.#problems.has(p)) this.ctx.log.warn("loadbalancer: {problem}", { problem: p });
    }
    this.#problems = new Set(problems);
    let failed: Error | null = null;
    for (const a of allocs) {
      if (!this.leading) return;
      try {
        await this.#write(a);
      } catch (e) {
        failed = e as Error;
        this.#logError(e);
      }
    }
    if (failed) throw failed;
  }

  /** `--dry-run`: what the allocator would write if it led, with no lease and no API write. */
  #describe(snapshot: ClusterSnapshot): void {
    const problems: string[] = [];
    const pools = parsePools(this.ctx.options.loadbalancerIpRange, problems);
    const allocs = allocate(
      snapshot.services.values(),
      pools,
      this.ctx.options.loadbalancerDefaultClass,
      problems,
    );
    const lines = [
      `# loadbalancer: pools ${
        this.ctx.options.loadbalancerIpRange.join(",") || "(none: --loadbalancer-ip-range)"
      }`,
      ...[...snapshot.services.values()]
        .filter((svc) =>
          handles(svc, this.ctx.options.loadbalancerDefaultClass) && svc.loadBalancerIPs.length
        )
        .filter((svc) => !allocs.some((a) => a.namespace === svc.namespace && a.name === svc.name))
        .map((svc) =>
          `# loadbalancer: service ${svc.namespace}/${svc.name} keeps ${
            svc.loadBalancerIPs.map((i) => i.ip).join(",")
          }`
        ),
      ...allocs.map((a) => `# loadbalancer: service ${a.namespace}/${a.name} would get ${a.ips.join(",")}`),
      ...problems.map((p) => `# loadbalancer: ${p}`),
    ];
    if (allocs.length === 0) lines.push("# loadbalancer: no service needs a new address");
    this.ctx.report?.(lines.join("\n") + "\n");
  }

  async #write(a: Allocation): Promise<void> {
    const core = this.#core!;
    const svc = await core.readNamespacedService({ name: a.name, namespace: a.namespace });
    const cur = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter(Boolean);
    // Re-check against the live object: another writer may have allocated meanwhile.
    if (a.ips.every((ip) => cur.includes(ip)) && cur.length >= a.ips.length) return;
    const keep = svc.status?.loadBalancer?.ingress ?? [];
    const add = a.ips.filter((ip) => !cur.includes(ip)).map((ip) => ({ ip }));
    svc.status = { ...svc.status, loadBalancer: { ...svc.status?.loadBalancer, ingress: [...keep, ...add] } };
    await core.replaceNamespacedServiceStatus({ name: a.name, namespace: a.namespace, body: svc });
    this.written++;
    this.ctx.log.info("loadbalancer: service {service} gets {ips}", {
      service: `${a.namespace}/${a.name}`,
      ips: add.map((x) => x.ip).join(","),
    });
  }
}

/** Builds the allocator. */
export function createLoadBalancerController(
  ctx: ControllerContext,
  deps: LoadBalancerDeps = {},
): Controller {
  return new LoadBalancerController(ctx, deps);
}

/** Nothing on the host to remove (allocations stay in the services' status, as upstream). */
export const loadbalancerCleanup: CleanupFn = () => Promise.resolve();

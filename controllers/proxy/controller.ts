/**
 * The service proxy controller: plan from the snapshot, then apply through IPVS (default) or
 * nftables (`--service-proxy-mode=nftables`), flush stale UDP flows, and serve
 * `healthCheckNodePort`s. Syncs are serialised; a sync whose plan did not change runs no command
 * that changes anything (and, between periodic verifications, no command at all).
 *
 * @module
 */
import { countSkippedObject } from "../../observe/problems.ts";
import { readIpvsStats } from "../../kernel/ipvs/stats.ts";
import { NftServiceStats, publishServiceStats } from "./service_metrics.ts";
import * as nft from "../../kernel/nft/mod.ts";
import { NFT_TABLE, STATS_SETS } from "./nft_render.ts";
import type { Controller, ControllerContext } from "../controller.ts";
import { type Clock, type Lane, openLane, realClock } from "../runner.ts";
import { deleteFlows } from "../../kernel/conntrack/mod.ts";
import {
  type AddressMonitor,
  type IfAddress,
  monitorAddresses,
  readAddresses,
} from "../../kernel/ip/address.ts";
import type { ProcFs } from "../../kernel/netns/mod.ts";
import type { NodeInfo } from "../../watch/types.ts";
import { isDeepStrictEqual } from "node:util";
import { detectIptablesBackend, type IptablesBackend } from "../../kernel/iptables/mod.ts";
import type { ClusterSnapshot, ResourceKind } from "../../watch/types.ts";
import { applyDrain, type DrainState } from "./drain.ts";
import { HealthServers } from "./health.ts";
import { canonicalIp, type Family, ipFamily, parseCidr } from "./ip.ts";
import { DsrApplier } from "./dsr.ts";
import { DUMMY_IF, IpvsApplier } from "./ipvs_apply.ts";
import { RefusedObjects, RefusedObjectsError } from "../refused.ts";
import { serviceInstance, withoutServices } from "./contain.ts";
import { NftApplier } from "./nft_apply.ts";
import { applyContained, type RefusedService } from "./nft_contain.ts";
import { Planner } from "./plan.ts";
import { staleUdpFlows } from "./stale_flows.ts";
import { applySysctls, needsSloppyTcp } from "./sysctls.ts";
import type { NodeIdentity, ProxyPlan } from "./types.ts";

/** Construction options that are not flags (tests and embedding). */
export interface ProxyControllerExtras {
  /** Address the healthCheckNodePort servers listen on; default all ("0.0.0.0"). */
  healthHostname?: string;
  /** Disable the healthCheckNodePort servers (e.g. when the runner targets another namespace). */
  healthChecks?: boolean;
  /** iptables backend for IPVS mode; default: what `iptables -V` reports. */
  iptablesBackend?: IptablesBackend;
  /** Clock for drain deadlines and verification (ms). */
  now?: () => number;
  /** Timers of the sync lane (drain deadlines, the address-change debounce); default real time. */
  clock?: Clock;
  /** Where DSR looks for pod network namespaces (default: the host's /proc). */
  procfs?: ProcFs;
  /** `start()` runs `ip monitor address` (default true); in this namespace (tests; default the agent's). */
  addressMonitor?: boolean;
  monitorNetns?: string;
}

const INTERESTING: ReadonlySet<ResourceKind> = new Set(["Service", "EndpointSlice", "Node", "Pod"]);

/** Links whose addresses NodePorts never bind to (upstream's filter) or that hold our VIPs. */
const SKIP_LINK = /dummy|kube|docker/;

/** The node as the plan needs it: primary IPs from the Node object, local addresses from the kernel. */
export function nodeIdentity(
  snapshot: ClusterSnapshot,
  nodeName: string,
  addrs: readonly IfAddress[],
  mtus: ReadonlyMap<string, number> = new Map(),
): NodeIdentity {
  const node = snapshot.nodes.get(nodeName);
  const pick = (f: Family) =>
    [...(node?.internalIPs ?? []), ...(node?.externalIPs ?? [])].map((a) => canonicalIp(a)).find((a) =>
      a !== undefined && ipFamily(a) === f
    );
  const local = addrs
    .filter((a) => a.dev !== "lo" && !SKIP_LINK.test(a.dev) && a.scope !== "link" && a.scope !== "host")
    .map((a) => canonicalIp(a.ip))
    .filter((a): a is string => a !== undefined);
  const ipv4 = pick(4), ipv6 = pick(6);
  const dev = nodeLink(addrs, ipv4 ?? ipv6);
  const mtu = dev === undefined ? undefined : mtus.get(dev);
  return {
    name: nodeName,
    ipv4,
    ipv6,
    localAddresses: [...new Set(local)].sort(),
    podCIDRs: node?.podCIDRs ?? [],
    ...(mtu !== undefined ? { mtu } : {}),
  };
}

/** The link holding the node's primary address. */
function nodeLink(addrs: readonly IfAddress[], ip: string | undefined): string | undefined {
  return ip === undefined ? undefined : addrs.find((a) => canonicalIp(a.ip) === ip)?.dev;
}

export class ProxyController implements Controller {
  readonly name = "proxy";
  readonly syncPeriodMs: number;
  #families: Family[];
  #nft?: NftApplier;
  #ipvs?: IpvsApplier;
  #health?: HealthServers;
  #applied?: ProxyPlan;
  #drain: DrainState = new Map();
  #addrs?: IfAddress[];
  #mtus = new Map<string, number>();
  /** The Node object the addresses were last read for. */
  #addrsNode?: NodeInfo;
  #dsr?: DsrApplier;
  #monitor?: AddressMonitor;
  /** An address changed since the last read (from the monitor). */
  #addrsStale = false;
  /** Sysctl inputs last applied (JSON), so they are written at start and when they change. */
  #sysctls?: string;
  #lastVerify = -Infinity;
  #warned = new Set<string>();
  /**
   * Every path into a sync: the spine's (`sync`), a drain deadline and an address change; one
   * at a time, against the newest snapshot.
   */
  #lane?: Lane;
  #clock: Clock;
  #snapshot?: ClusterSnapshot;
  #now: () => number;
  #planner = new Planner();
  /** Services whose nftables rules nft refused, left out until they change or the next resync. */
  readonly nftRefused = new Map<string, RefusedService>();
  /** Services whose kernel state a tool refused, left out until they change or the next resync (contain.ts). */
  readonly refused: RefusedObjects;

  constructor(private readonly ctx: ControllerContext, private readonly extras: ProxyControllerExtras = {}) {
    this.syncPeriodMs = ctx.options.ipvsSyncPeriod;
    this.#families = [];
    if (ctx.options.enableIpv4) this.#families.push(4);
    if (ctx.options.enableIpv6) this.#families.push(6);
    this.#clock = extras.clock ?? realClock;
    this.#now = extras.now ?? (() => this.#clock.now());
    this.refused = new RefusedObjects(ctx, "proxy", "its VIPs are not served");
    if (this.mode === "ipvs") {
      const exportTime = ctx.metrics.histogram(
        "kube_router_controller_ipvs_metrics_export_time",
        "Time to read and publish the per-service IPVS counters (seconds)",
      );
      ctx.metrics.addCollector(async () => {
        const services = this.#applied?.services;
        if (!services) return;
        const t0 = performance.now();
        publishServiceStats(ctx.metrics, services, await readIpvsStats(ctx.runner));
        exportTime.observe((performance.now() - t0) / 1000);
      });
    }
    if (this.mode === "nftables") {
      // The same per-service series from the nftables counters (service_metrics.ts).
      const stats = new NftServiceStats();
      ctx.metrics.addCollector(async () => {
        const services = this.#applied?.services;
        if (!services) return;
        const counters = new Map<string, Map<string, nft.ElementCounter>>();
        for (const f of this.#families) {
          const read = await nft.readSetCounters(ctx.runner, {
            family: f === 4 ? "ip" : "ip6",
            name: NFT_TABLE,
          }, STATS_SETS);
          for (const [set, m] of read) {
            const all = counters.get(set) ?? new Map();
            for (const [k, v] of m) all.set(k, v);
            counters.set(set, all);
          }
        }
        publishServiceStats(ctx.metrics, services, stats.update(services, counters, this.#now()));
      });
    }
    if (extras.healthChecks !== false) {
      this.#health = new HealthServers(
        extras.healthHostname ?? "0.0.0.0",
        (port, e) =>
          ctx.log.error("healthCheckNodePort {port} cannot listen: {error}", { port, error: String(e) }),
      );
    }
  }

  get mode(): "ipvs" | "nftables" {
    return this.ctx.options.serviceProxyMode === "nftables" ? "nftables" : "ipvs";
  }

  /** The plan applied by the last successful sync (tests, metrics). */
  get applied(): ProxyPlan | undefined {
    return this.#applied;
  }

  interestedIn(kinds: ReadonlySet<ResourceKind>): boolean {
    return [...kinds].some((k) => INTERESTING.has(k));
  }

  sync(snapshot: ClusterSnapshot, _signal?: AbortSignal): Promise<void> {
    this.#snapshot = snapshot;
    return this.#syncLane().run();
  }

  #syncLane(): Lane {
    this.#lane ??= openLane(
      this.ctx,
      this.name,
      "sync",
      () => this.#snapshot ? this.#sync(this.#snapshot) : Promise.resolve(),
      { clock: this.#clock, health: true },
    );
    return this.#lane;
  }

  async #sync(snapshot: ClusterSnapshot): Promise<void> {
    const t0 = performance.now();
    const { runner, log, options } = this.ctx;
    const now = this.#now();
    const verify = now - this.#lastVerify >= this.syncPeriodMs;
    // Addresses are re-read at each verification and whenever the Node object changed (a new
    // InternalIP usually means the node's links changed too), not on every endpoint event.
    const nodeObj = snapshot.nodes.get(this.ctx.nodeName);
    const nodeChanged = nodeObj !== this.#addrsNode && !isDeepStrictEqual(nodeObj, this.#addrsNode);
    if (verify || !this.#addrs || nodeChanged || this.#addrsStale) {
      this.#addrsStale = false;
      const r = await readAddresses(runner);
      this.#addrs = r.addrs;
      this.#mtus = r.mtus;
      this.#addrsNode = nodeObj;
    }
    const node = nodeIdentity(snapshot, this.ctx.nodeName, this.#addrs, this.#mtus);
    if (!node.ipv4 && !node.ipv6 && !this.#warned.has("node")) {
      this.#warned.add("node");
      log.warn(
        "node {node} has no InternalIP/ExternalIP in the snapshot (no Node object?): NodePorts and SNAT need one",
        { node: this.ctx.nodeName },
      );
    }
    this.refused.prune((o) => serviceInstance(snapshot, o), now, this.syncPeriodMs);
    let p = this.#planner.plan(withoutServices(snapshot, this.refused.entries.keys()), options, node);
    for (const w of p.warnings) {
      const key = `${w.service} ${w.field}: ${w.message}`;
      if (this.#warned.has(key)) continue;
      this.#warned.add(key);
      countSkippedObject(w.service ? "Service" : "option", "invalid-field");
      log.warn(w.service ? "service {service} {field}: {message}" : "{field}: {message}", { ...w });
    }
    if (this.#warned.size > 10_000) this.#warned.clear();

    if (this.mode === "nftables") {
      this.#nft ??= new NftApplier(runner, this.#families);
      if (verify && this.#applied && !(await this.#nft.present())) {
        log.warn("nftables table kube-router-proxy went missing; rewriting it");
        this.#nft.invalidate();
      }
      // A Service whose rules nft refuses is left out; the rest is applied (nft_contain.ts).
      const contained = await applyContained(this.#nft, p, this.#applied, this.nftRefused, {
        now,
        retryAfterMs: this.syncPeriodMs,
        log,
        metrics: this.ctx.metrics,
        healthNote: this.ctx.healthNote,
      });
      p = contained.applied;
      const r = contained.result;
      if (r.script) {
        log.debug("applied {kind} nftables transaction of {lines} lines", {
          kind: r.full ? "a full" : "an incremental",
          lines: r.script.split("\n").length - 1,
        });
      }
    } else {
      const drain = (plan: ProxyPlan) =>
        applyDrain(this.#applied, plan, this.#drain, now, {
          gracefulRemoval: options.ipvsGracefulTermination,
          gracePeriodMs: options.ipvsGracefulPeriod,
          podGraceMs: (pod) => {
            const info = snapshot.pods.get(pod);
            return info ? info.terminationGracePeriodSeconds * 1000 : undefined;
          },
        });
      let d = drain(p);
      p = d.plan;
      if (!this.#ipvs) {
        this.#ipvs = new IpvsApplier(runner, {
          families: this.#families,
          backend: this.extras.iptablesBackend ?? await detectIptablesBackend(runner),
          excludedCidrs: options.excludedCidrs.map((c) => parseCidr(c)).filter((c) => c !== undefined),
          options,
          warn: (m) => log.warn(m),
        });
      }
      let ran: string[];
      for (let attempt = 0;; attempt++) {
        try {
          ran = await this.#ipvs.apply(p, verify || attempt > 0);
          break;
        } catch (e) {
          // Services a tool refused are left out and the rest applied again (contain.ts).
          const current = (o: string) => serviceInstance(snapshot, o);
          if (
            !(e instanceof RefusedObjectsError) || attempt >= 8 || !this.refused.add(e.refused, current, now)
          ) {
            throw e;
          }
          d = drain(
            this.#planner.plan(withoutServices(snapshot, this.refused.entries.keys()), options, node),
          );
          p = d.plan;
        }
      }
      this.#dsr ??= new DsrApplier(runner, {
        families: this.#families,
        runtimeEndpoint: options.runtimeEndpoint,
        procfs: this.extras.procfs,
        log: {
          warn: (m) => log.warn(m),
          error: (m) => log.error(m),
          debug: (m) => log.debug(m),
        },
      });
      ran.push(...await this.#dsr.apply(p, verify));
      if (ran.length) log.debug("IPVS sync changed the kernel with {steps}", { steps: ran.join(", ") });
      this.#drain = d.state;
      this.#scheduleDrain(d.nextDeadline, now);
      // The nftables branch publishes its own record (nft_contain.ts) under the same names.
      this.refused.publish();
    }
    await this.#applySysctls(p, node, verify);
    if (verify) this.#lastVerify = now;

    const stale = staleUdpFlows(this.#applied, p);
    if (stale.length) {
      const n = await deleteFlows(runner, stale);
      log.debug("deleted {n} stale UDP flows", { n });
    }
    this.#applied = p;
    this.#health?.update(p.healthChecks);
    this.ctx.metrics.histogram(
      "kube_router_controller_ipvs_services_sync_time",
      "Time to sync the service proxy (s)",
    )
      .observe((performance.now() - t0) / 1000);
    this.ctx.metrics.gauge("kube_router_controller_ipvs_services", "Virtual services programmed").set(
      p.services.length,
    );
  }

  /** Start-up sysctls (then again when their inputs change, or at a verification). */
  async #applySysctls(p: ProxyPlan, node: NodeIdentity, verify: boolean): Promise<void> {
    const ipvs = this.mode === "ipvs";
    const nodeDev = nodeLink(this.#addrs ?? [], node.ipv4 ?? node.ipv6);
    const inputs = {
      ipvs,
      links: ["kube-bridge", ...(ipvs ? [DUMMY_IF] : []), ...(nodeDev ? [nodeDev] : [])],
      sloppyTcp: ipvs && needsSloppyTcp(p),
    };
    const key = JSON.stringify(inputs);
    if (!verify && this.#sysctls === key) return;
    const r = await applySysctls(this.ctx.runner, inputs);
    for (const w of r.warnings) {
      if (this.#warned.has(w)) continue;
      this.#warned.add(w);
      this.ctx.log.warn(w);
    }
    if (r.changed.length) {
      this.ctx.log.info(this.ctx.dryRun ? "sysctls to set (dry run): {keys}" : "sysctls set: {keys}", {
        keys: r.changed.join(", "),
      });
    }
    this.#sysctls = key;
  }

  /** A drain deadline needs a sync even if nothing else happens (upstream runs a 5 s ticker). */
  #scheduleDrain(deadline: number | undefined, now: number): void {
    if (deadline === undefined) return;
    this.#syncLane().triggerAt(this.#clock.now() + Math.max(0, deadline - now) + 10);
  }

  /**
   * Watches the node's addresses (`ip monitor address`): a change marks them stale and triggers a
   * sync of the last snapshot (debounced), so a new or removed node address reaches NodePorts and
   * `kube-router-local-ips` without waiting for the periodic resync.
   */
  start(signal: AbortSignal): Promise<void> {
    if (this.extras.addressMonitor === false || this.#monitor) return Promise.resolve();
    this.#monitor = monitorAddresses(this.ctx.runner, (dev) => {
      // Our own VIPs on kube-dummy-if (and other skipped links) never change the node's addresses.
      if (dev === undefined || (dev !== "lo" && !SKIP_LINK.test(dev))) this.#addressesChanged();
    }, {
      netns: this.extras.monitorNetns,
      onExit: (code) =>
        this.ctx.log.warn(
          "ip monitor address exited with {code}; node addresses are re-read at each resync",
          {
            code,
          },
        ),
    });
    signal.addEventListener("abort", () => this.#monitor?.close(), { once: true });
    return Promise.resolve();
  }

  /** Debounced: the changes of the next 200 ms join one sync. */
  #addressesChanged(): void {
    this.#addrsStale = true;
    this.#syncLane().triggerAt(this.#clock.now() + 200);
  }

  async stop(): Promise<void> {
    await this.#monitor?.close();
    this.#monitor = undefined;
    // A controller stopped and synced again (tests) gets a fresh lane.
    await this.#lane?.stop();
    this.#lane = undefined;
    this.#dsr?.close();
    await this.#health?.close();
  }
}

/** The proxy controller for the agent. */
export function createProxyController(
  ctx: ControllerContext,
  extras: ProxyControllerExtras = {},
): ProxyController {
  return new ProxyController(ctx, extras);
}

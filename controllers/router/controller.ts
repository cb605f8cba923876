/**
 * The routing controller: plan → host (bridge, sysctls, CNI, netfilter) → speaker (peers,
 * originations, policies) → kernel routes from the speaker's best paths.
 *
 * - Node annotation changes take effect at once (upstream needs a restart): each sync re-plans
 *   and peers are added, updated or removed on the running speaker; only a change of the
 *   speaker's own identity (ASN, router id, listen addresses/port, GR, cluster id) restarts it.
 * - Learned routes reach the kernel as per-prefix deltas: each best-path event records the prefix
 *   (and the next hop it had, i.e. what the kernel holds); a short coalescing delay later one flush
 *   (`#flushRouteDelta`) writes only those prefixes, in bulk over rtnetlink (kernel/ip/route_write.ts;
 *   `ip -batch` in dry-run). Nothing scales with the table per change: a withdraw and re-announce
 *   of the same next hop inside one batch writes nothing. A full diff against the kernel runs on
 *   start, when the next-hop context changes, after a failure, and every
 *   `--injected-routes-sync-period` (drift repair).
 * - After a restart, routes of our protocol already in the kernel are kept (not deleted) until
 *   the speaker has had time to relearn them (all peers Established for a few seconds, or the
 *   GR restart time): traffic keeps flowing across an agent restart.
 *
 * @module
 */
import { countSkippedObject, kindOfReference } from "../../observe/problems.ts";
import { BgpSpeaker, type PeerConfig, type RibKey, ribKeyText, type SpeakerConfig } from "../../bgp/mod.ts";
import { detectIptablesBackend, type IptablesBackend } from "../../kernel/iptables/mod.ts";
import { cniConfPath, ensureCniConf, readConf, updateCniConf } from "../../kernel/cni/conf.ts";
import { ensureSysctls } from "../../kernel/sysctl.ts";
import { ipBatch } from "../../kernel/ip/mod.ts";
import type { ClusterSnapshot, ResourceKind } from "../../watch/types.ts";
import type { Controller, ControllerContext } from "../controller.ts";
import { type Clock, type Lane, openLane, realClock } from "../runner.ts";
import { serveAdmin } from "./admin.ts";
import { SourceDestCheck, type SourceDestCheckDeps } from "./aws/mod.ts";
import {
  BRIDGE,
  bridgeLines,
  gatewayOf,
  type HostFacts,
  linkOfAddress,
  localSubnets,
  readHostFacts,
  vxlanLines,
  vxlanSpec,
} from "./host.ts";
import { problemText } from "./identity.ts";
import { applyKernelPlan, type KernelState, readKernelState } from "./ip_apply.ts";
import { type Route, type RouteOp, sameRoute, writeRoutes } from "../../kernel/ip/mod.ts";
import { applyNetfilter } from "./iptables_apply.ts";
import { RefusedObjects } from "../refused.ts";
import { nodeInstance, nodesOfLine, nodesOfValue, refusedSetEntry } from "./contain.ts";
import type { RefusedLine } from "./ip_apply.ts";
import { type PeerPlan, planRouter, type RouterPlan } from "./plan.ts";
import {
  isOurLink,
  kernelPlan,
  type LearnedRoute,
  type OverlayConfig,
  overlayOverhead,
  overlayPlan,
  type RouteContext,
  RouteDecider,
  VXLAN_DEV,
  VXLAN_OVERHEAD,
} from "./routes.ts";

/**
 * Up to this many learned routes, every sync also re-reads the kernel and repairs drift (cheap);
 * above it only the periodic `--injected-routes-sync-period` pass does.
 */
const FULL_REPAIR_MAX = 20_000;

/** A learned prefix changed since the last flush. */
interface PendingPrefix {
  readonly key: RibKey;
  /** The next hop the kernel has for it (null: none of ours). */
  readonly kernel: string | null;
  /** Its best next hop now (null: withdrawn). */
  hop: string | null;
}

/** Pending prefixes written per slice of a flush (~16 chunks of netlink messages). */
const DELTA_SLICE = 8192;

/** Injection points for tests and the lab (everything has a production default). */
export interface RouterDeps {
  /** CNI config path (default: `KUBE_ROUTER_CNI_CONF_FILE` or /etc/cni/net.d/10-kuberouter.conf). */
  cniConfPath?: string;
  /** iptables backend for our chains (default: what the host's `iptables` uses). */
  iptablesBackend?: IptablesBackend;
  /** Builds the speaker (default `new BgpSpeaker`). */
  speakerFactory?: (cfg: SpeakerConfig) => BgpSpeaker;
  /** Reads `--peer-router-passwords-file`. */
  readTextFile?: (path: string) => Promise<string>;
  /** Coalescing delay for best-path bursts, ms (default 2). */
  routeBatchDelayMs?: number;
  /** Timers of the learned-routes lane (batching, hold re-checks, the periodic repair). */
  clock?: Clock;
  /** How long all peers must be Established before stale kernel routes may go, ms (default 5000). */
  settleMs?: number;
  /** `--disable-source-dest-check` on AWS: environment, fetch, clock, back-off (see aws/). */
  aws?: SourceDestCheckDeps;
}

const INTERESTING: ReadonlySet<ResourceKind> = new Set<ResourceKind>(["Node", "Service", "EndpointSlice"]);

export class RouterController implements Controller {
  readonly name = "router";
  readonly syncPeriodMs: number;
  #speaker: BgpSpeaker | null = null;
  #speakerKey = "";
  #peers = new Map<string, string>();
  /** "internal" (nodes) or "external", by peer address, for bgp_peer_info. */
  #peerKinds = new Map<string, string>();
  #origins = new Map<string, string>();
  /**
   * Best next hop per learned prefix, by the RIB's key (a number for IPv4: no string per prefix;
   * `ribKeyText` gives the text). Next-hop strings are interned through `#hops`.
   */
  #learned = new Map<RibKey, string | PendingPrefix>();
  /**
   * Prefixes changed since the last flush, in order, in blocks of at most DELTA_SLICE (a flush
   * slice takes one block and drops it: no copy, nothing held past its slice, however long the
   * burst). Each is also its own value in `#learned` until the flush settles it (one map write
   * per change, not a second map to keep in step).
   */
  #pending: PendingPrefix[][] = [];
  /** Prefixes with a best path from a peer (`#learned` also holds pending withdrawals). */
  #learnedCount = 0;
  /** Prefixes whose last write the kernel refused (retried on their next change or full pass). */
  #failedPrefixes = new Set<string>();
  /** Learned routes per next hop (the overlay needs a tunnel/neighbour per next hop in use). */
  #hops = new Map<string, { hop: string; n: number }>();
  /** Overlay next hops whose neighbours/tunnels were last applied (sorted, joined). */
  #auxKey = "";
  /** Routes of ours believed in the kernel's main table, per family. */
  #synced = { v4: 0, v6: 0 };
  /** Stale routes kept by the last full pass (hold after restart); 0 means nothing to remove later. */
  #staleKept = 0;
  #routeCtx: RouteContext | null = null;
  #routeCtxKey = "";
  #decider: RouteDecider | null = null;
  /** Non-main-table state (overlay neighbours, FDB, tunnels, table 77, rules); null: re-read the kernel. */
  #kernel: KernelState | null = null;
  /**
   * Every path into applying learned routes: best-path events (batched), the sync, the hold
   * re-check and the periodic repair; one pass at a time.
   */
  #routes: Lane | null = null;
  #clock: Clock;
  /** `--injected-routes-sync-period` once started (0: no periodic repair). */
  #repairEveryMs = 0;
  /** When the last full pass (kernel re-read) finished, on `#clock`. */
  #lastFullAt = 0;
  #holdStale = true;
  #holdDeadline = 0;
  #allUpSince = 0;
  #lastProblems = new Set<string>();
  /** Nodes whose values the kernel refused, left out until they change or the next resync (contain.ts). */
  readonly refused: RefusedObjects;
  /** The last plan and snapshot (to trace a refused route to its Node). */
  #plan: RouterPlan | null = null;
  #snapshot: ClusterSnapshot | null = null;
  #admin: Deno.HttpServer | null = null;
  #abort = new AbortController();
  #families: Array<4 | 6>;
  /** Last error from applying learned routes (surfaced by the next sync). */
  lastRouteError: Error | null = null;
  /** Upstream's metric names (reference §3.0), namespace kube_router_. */
  readonly #m;
  /**
   * Counters for tests and benchmarks. `routeLines` counts per pass (when it ends); `deltaOps`
   * counts the route changes each slice of the per-prefix delta sent, as soon as it sent them;
   * `deltaMerged` the pending prefixes it found back where the kernel has them (withdrawn and
   * re-learned through the same hop between two flushes), which need no write.
   */
  readonly stats = { routeApplies: 0, routeLines: 0, lastRouteApplyAt: 0, deltaOps: 0, deltaMerged: 0 };
  /** AWS: disables the EC2 source/dest check of AWS nodes in the background (aws/); null when off. */
  readonly sourceDestCheck: SourceDestCheck | null;

  /** Detected once: the host's iptables backend does not change under a running agent. */
  #iptablesBackend: IptablesBackend | undefined;

  constructor(readonly ctx: ControllerContext, readonly deps: RouterDeps = {}) {
    this.syncPeriodMs = ctx.options.routesSyncPeriod;
    this.refused = new RefusedObjects(
      ctx,
      "router",
      "only that value is left out of the node's kernel state",
    );
    const m = ctx.metrics;
    this.#m = {
      syncTime: m.histogram(
        "kube_router_controller_routes_sync_time",
        "Time of one routing controller sync (seconds)",
      ),
      hostSyncTime: m.histogram(
        "kube_router_host_routes_sync_time",
        "Time to apply learned routes to the kernel (seconds)",
      ),
      peerInfo: m.gauge(
        "kube_router_bgp_peer_info",
        "BGP peers: 1 per peer, labelled with address, type, asn, state",
        ["address", "type", "asn", "state"],
      ),
      routesSynced: m.gauge(
        "kube_router_host_routes_synced",
        "Routes of ours (proto 17) believed in the kernel",
      ),
      routesAdded: m.counter("kube_router_host_routes_added", "Kernel routes added or replaced"),
      routesRemoved: m.counter("kube_router_host_routes_removed", "Kernel routes removed"),
      advReceived: m.counter(
        "kube_router_controller_bgp_advertisements_received",
        "Best-path changes learned from peers",
      ),
      advSent: m.counter("kube_router_controller_bgp_advertisements_sent", "Originations and withdrawals", [
        "type",
      ]),
      peers: m.gauge("kube_router_controller_bgp_peers", "BGP peers configured on the speaker"),
      peersSyncTime: m.histogram(
        "kube_router_controller_bgp_internal_peers_sync_time",
        "Time to reconcile the speaker's peers with the plan (seconds)",
      ),
    };
    this.sourceDestCheck = ctx.options.disableSourceDestCheck
      ? new SourceDestCheck({ ...deps.aws, log: ctx.log, dryRun: ctx.dryRun, report: ctx.report })
      : null;
    this.#families = [
      ...(ctx.options.enableIpv4 ? [4 as const] : []),
      ...(ctx.options.enableIpv6 ? [6 as const] : []),
    ];
    this.#clock = deps.clock ?? realClock;
  }

  #routesLane(): Lane {
    this.#routes ??= openLane(this.ctx, this.name, "routes", () => this.#routesPass(), {
      clock: this.#clock,
      batchMs: this.deps.routeBatchDelayMs ?? 2,
    });
    return this.#routes;
  }

  /** The CNI config file this router writes. */
  #cniPath(): string {
    return this.deps.cniConfPath ?? (this.ctx.options.cniConfFile || cniConfPath());
  }

  interestedIn(kinds: ReadonlySet<ResourceKind>): boolean {
    return [...kinds].some((k) => INTERESTING.has(k));
  }

  /** The running speaker (admin API, tests). */
  get speaker(): BgpSpeaker | null {
    return this.#speaker;
  }

  start(signal: AbortSignal): Promise<void> {
    signal.addEventListener("abort", () => this.#abort.abort(), { once: true });
    const o = this.ctx.options;
    if (!this.ctx.dryRun) {
      try {
        this.#admin = serveAdmin(
          o.gobgpAdminAddress,
          o.gobgpAdminPort,
          () => this.#speaker,
          this.#abort.signal,
        );
      } catch (e) {
        this.ctx.log.warn("router: admin API not served on {address}:{port}: {error}", {
          address: o.gobgpAdminAddress,
          port: o.gobgpAdminPort,
          error: (e as Error).message,
        });
      }
    }
    this.#repairEveryMs = o.injectedRoutesSyncPeriod;
    this.#lastFullAt = this.#clock.now();
    if (this.#repairEveryMs > 0) this.#routesLane().triggerAt(this.#lastFullAt + this.#repairEveryMs);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.sourceDestCheck?.close();
    this.#routeCtx = null;
    // A controller stopped and synced again (tests) gets a fresh lane.
    const routes = this.#routes;
    this.#routes = null;
    this.#abort.abort();
    if (this.#admin) await this.#admin.finished.catch(() => {});
    if (this.#speaker) {
      // With GR the peers keep our routes while we are gone (upstream keeps BGP up likewise).
      await this.#speaker.stop({ graceful: this.ctx.options.bgpGracefulRestart });
      this.#speaker = null;
    }
    await routes?.stop();
  }

  async sync(snapshot: ClusterSnapshot, signal: AbortSignal): Promise<void> {
    await this.#m.syncTime.time(() => this.#sync(snapshot, signal));
    this.#updatePeerMetrics();
  }

  #updatePeerMetrics(): void {
    this.#m.peerInfo.reset();
    const kinds = new Map<string, string>();
    for (const k of this.#peers.keys()) kinds.set(k, this.#peerKinds.get(k) ?? "");
    for (const p of this.#speaker?.peers() ?? []) {
      this.#m.peerInfo.set(1, {
        address: p.address,
        type: kinds.get(p.address) ?? "",
        asn: String(p.asn),
        state: p.state,
      });
    }
  }

  async #sync(snapshot: ClusterSnapshot, _signal: AbortSignal): Promise<void> {
    // AWS source/dest check: started here, runs in the background, never fails this sync.
    this.sourceDestCheck?.update(snapshot.nodes.values());
    const o = this.ctx.options;
    let passwordsFileText: string | undefined;
    if (o.peerRouterPasswordsFile && o.peerRouterPasswords.length === 0) {
      try {
        passwordsFileText = await (this.deps.readTextFile ?? Deno.readTextFile)(o.peerRouterPasswordsFile);
      } catch (e) {
        // Checked at start-up; this is the file vanishing under a running agent.
        throw new Error(
          `--peer-router-passwords-file ${JSON.stringify(o.peerRouterPasswordsFile)}: cannot read the file: ${
            (e as Error).message
          }`,
          { cause: e },
        );
      }
    }
    const plan = planRouter({ snapshot, options: o, nodeName: this.ctx.nodeName, passwordsFileText });
    this.#reportProblems(plan);
    this.refused.prune((o) => nodeInstance(snapshot, o), Date.now(), this.syncPeriodMs);
    this.#plan = plan;
    this.#snapshot = snapshot;
    if (!plan.local || !plan.speaker) {
      // This node is gone from the cluster (or cannot be identified): stop announcing anything.
      if (this.#speaker) {
        await this.#speaker.stop();
        this.#speaker = null;
        this.#speakerKey = "";
      }
      if (!plan.local) return;
    }

    const facts = await readHostFacts(this.ctx.runner);
    const nodeIp4 = plan.local.ipv4, nodeIp6 = plan.local.ipv6;
    const underlay = linkOfAddress(facts, nodeIp4 ?? nodeIp6 ?? "");
    const overlay = this.#overlayConfig();
    const overhead = overlay.enabled ? overlayOverhead(overlay.encap) : 0;
    const podMtu = o.autoMtu && underlay ? underlay.mtu - overhead : undefined;

    // Each stage runs even when an earlier one failed (a broken iptables must not stop BGP);
    // the first error is rethrown at the end so the runner retries with back-off.
    const errors: Error[] = [];
    const stage = async (name: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (e) {
        const err = new Error(`router ${name}: ${(e as Error).message}`, { cause: e });
        this.ctx.log.error("{error}", { error: err.message });
        errors.push(err);
      }
    };
    const local = plan.local;

    // 1. Host: kube-bridge, overlay device, sysctls.
    await stage("host", async () => {
      const gateways = local.podCIDRs.map(gatewayOf).filter((g): g is string => !!g);
      const vx = overlay.enabled && overlay.encap === "vxlan" && nodeIp4
        ? vxlanSpec(nodeIp4, underlay ? underlay.mtu - VXLAN_OVERHEAD : undefined, underlay?.name)
        : null;
      await ipBatch(this.ctx.runner, [
        ...bridgeLines(facts, {
          mtu: podMtu,
          gateways,
          ...(o.enableCni && !this.ctx.dryRun ? { cniPath: this.#cniPath() } : {}),
        }),
        ...vxlanLines(facts, vx),
      ]);
      const sysctls = new Map<string, string>([["net.ipv4.ip_forward", "1"]]);
      sysctls.set("net.bridge.bridge-nf-call-iptables", "1");
      if (o.enableIpv6) {
        sysctls.set("net.bridge.bridge-nf-call-ip6tables", "1");
        sysctls.set("net.ipv6.conf.all.disable_ipv6", "0");
        sysctls.set("net.ipv6.conf.all.forwarding", "1");
      }
      await ensureSysctls(this.ctx.runner, sysctls);
    });

    // 2. CNI config.
    if (o.enableCni && this.ctx.dryRun) {
      await stage("CNI config", async () => {
        const path = this.deps.cniConfPath ?? cniConfPath();
        const text = await readConf(path);
        const next = updateCniConf(text, { podCidrs: local.podCIDRs, mtu: podMtu });
        this.ctx.report?.(
          next === text
            ? `# CNI config ${path} is up to date\n`
            : `# CNI config ${path} would be ${text === null ? "created" : "rewritten"}:\n${next}`,
        );
      });
    } else if (o.enableCni) {
      await stage("CNI config", async () => {
        const path = this.#cniPath();
        const r = await ensureCniConf(path, { podCidrs: local.podCIDRs, mtu: podMtu });
        if (r.written) this.ctx.log.info("router: wrote CNI config {path}", { path: r.path });
      });
    }

    // 3. Our iptables chains and ipsets, per family, in the backend the host's iptables uses.
    const backend = this.#iptablesBackend ??= this.deps.iptablesBackend ??
      await detectIptablesBackend(this.ctx.runner);
    for (const fam of this.#families) {
      const v6 = fam === 6;
      await stage(`netfilter (IPv${fam})`, async () => {
        // An entry `ipset restore` refuses is traced to its Node and left out; the rest is applied.
        for (let attempt = 0;; attempt++) {
          const left = new Set(
            [...this.refused.entries.values()].filter((r) => r.reason.startsWith("ipset")).map((r) =>
              r.value
            ),
          );
          try {
            await applyNetfilter(this.ctx.runner, backend, {
              v6,
              podEgress: o.enablePodEgress,
              bridge: BRIDGE,
              podCidrs: plan.allPodCidrs.filter((c) => c.includes(":") === v6 && !left.has(c)),
              nodeIps: plan.allNodeIps.filter((c) => c.includes(":") === v6 && !left.has(c)),
            });
            return;
          } catch (e) {
            const refused = refusedSetEntry(e, plan);
            const current = (obj: string) => nodeInstance(snapshot, obj);
            if (!refused.length || attempt >= 8 || !this.refused.add(refused, current, Date.now())) throw e;
          }
        }
      });
    }

    // 4. Speaker.
    if (plan.speaker && this.ctx.dryRun) this.ctx.report?.(describeBgpPlan(plan));
    else if (plan.speaker) await stage("BGP speaker", () => this.#reconcileSpeaker(plan));

    // 5. Kernel routes: context for next-hop decisions; a full (kernel-read) pass when it changed
    // (or while the table is small enough that repairing drift on every sync is cheap).
    const routeCtx: RouteContext = {
      overlay,
      localSubnets: localSubnets(facts, (dev) => dev === BRIDGE || isOurLink(dev)),
      nodeIp: { v4: nodeIp4, v6: nodeIp6 },
      nodeIps: new Set(plan.remoteNodes.flatMap((n) => [n.ipv4, n.ipv6]).filter((x): x is string => !!x)),
      localPodCidrs: local.podCIDRs,
      vtepOf: new Map(
        plan.remoteNodes.flatMap((n) => {
          const vtep = n.ipv4 ?? n.ipv6;
          return [n.ipv4, n.ipv6].filter((x): x is string => !!x).map((ip) =>
            [ip, vtep!] as [string, string]
          );
        }),
      ),
    };
    const ctxKey = JSON.stringify(
      routeCtx,
      (_k, v) => v instanceof Set ? [...v].sort() : v instanceof Map ? [...v].sort() : v,
    );
    if (ctxKey !== this.#routeCtxKey || this.#learnedCount <= FULL_REPAIR_MAX) this.#kernel = null;
    if (ctxKey !== this.#routeCtxKey) this.#decider = new RouteDecider(routeCtx);
    this.#routeCtx = routeCtx;
    this.#routeCtxKey = ctxKey;
    if (this.ctx.dryRun) this.ctx.report?.(describeExpectedRoutes(plan, routeCtx));
    // Its error is `lastRouteError`, reported below.
    await this.#routesLane().run().catch(() => {});
    this.refused.publish();
    if (this.lastRouteError) errors.push(this.lastRouteError);
    if (errors.length > 0) throw errors[0];
  }

  #overlayConfig(): OverlayConfig {
    const o = this.ctx.options;
    return {
      enabled: o.enableOverlay,
      type: o.overlayType === "full" ? "full" : "subnet",
      encap: o.overlayEncap === "vxlan" ? "vxlan" : o.overlayEncap === "fou" ? "fou" : "ipip",
      encapPort: o.overlayEncapPort,
    };
  }

  #reportProblems(plan: RouterPlan): void {
    const now = new Set(plan.problems.map(problemText));
    for (const p of plan.problems) {
      if (!this.#lastProblems.has(problemText(p))) {
        countSkippedObject(kindOfReference(p.object, "Node"), "invalid-field");
      }
    }
    for (const p of now) {
      if (!this.#lastProblems.has(p)) this.ctx.log.error("router: {problem}", { problem: p });
    }
    this.#lastProblems = now;
  }

  async #reconcileSpeaker(plan: RouterPlan): Promise<void> {
    const sp = plan.speaker!;
    const cfg: SpeakerConfig = {
      asn: sp.asn,
      routerId: sp.routerId,
      listen: { addresses: sp.listenAddresses, port: sp.port },
      ...(sp.gracefulRestart ? { gracefulRestart: sp.gracefulRestart } : {}),
      ...(sp.clusterId ? { clusterId: sp.clusterId } : {}),
    };
    const key = JSON.stringify(cfg);
    if (this.#speaker && key !== this.#speakerKey) {
      this.ctx.log.info("router: speaker identity changed, restarting it", {});
      await this.#speaker.stop();
      this.#speaker = null;
    }
    if (!this.#speaker) {
      const log = this.ctx.log;
      const first = this.#kernel === null && this.#speakerKey === "";
      let restarting = false;
      if (first && cfg.gracefulRestart) {
        // Our routes already in the kernel mean a previous instance ran: announce the restart.
        const st = await readKernelState(this.ctx.runner, this.#families);
        restarting = st.routes.length > 0;
      }
      const full: SpeakerConfig = {
        ...cfg,
        ...(cfg.gracefulRestart ? { gracefulRestart: { ...cfg.gracefulRestart, restarting } } : {}),
        log: (level, msg, fields) => {
          const f = fields ?? {};
          if (level === "error") log.error(`bgp: ${msg}`, f);
          else if (level === "warning") log.warn(`bgp: ${msg}`, f);
          else if (level === "info") log.info(`bgp: ${msg}`, f);
          else log.debug(`bgp: ${msg}`, f);
        },
      };
      const s = (this.deps.speakerFactory ?? ((c) => new BgpSpeaker(c)))(full);
      s.onBestPathChange((ev) => this.#onBestPath(ev.key, ev.peerNextHop));
      this.#peers.clear();
      this.#origins.clear();
      this.#learned.clear();
      this.#pending = [];
      this.#learnedCount = 0;
      this.#hops.clear();
      this.#failedPrefixes.clear();
      this.#kernel = null;
      this.#holdStale = true;
      this.#allUpSince = 0;
      this.#holdDeadline = Date.now() + Math.max(10_000, (cfg.gracefulRestart?.restartTime ?? 0) * 1000);
      await s.start();
      this.#speaker = s;
      this.#speakerKey = key;
    }
    const s = this.#speaker;
    // Peers (timed as upstream's internal-peers sync).
    const peersStart = performance.now();
    const want = new Map(plan.peers.map((p) => [p.address, peerConfig(p, plan)]));
    for (const addr of [...this.#peers.keys()]) {
      if (!want.has(addr)) {
        await s.removePeer(addr);
        this.#peers.delete(addr);
        this.#peerKinds.delete(addr);
        this.ctx.log.info("router: removed peer {address}", { address: addr });
      }
    }
    for (const [addr, pc] of want) {
      const k = JSON.stringify(pc);
      const cur = this.#peers.get(addr);
      if (cur === k) continue;
      try {
        if (cur === undefined) s.addPeer(pc);
        else s.updatePeer(pc);
        this.#peers.set(addr, k);
        this.#peerKinds.set(
          addr,
          plan.peers.find((p) => p.address === addr)?.kind === "node" ? "internal" : "external",
        );
        if (cur === undefined) {
          this.ctx.log.info("router: added peer {address} AS{asn}", { address: addr, asn: pc.asn });
        }
      } catch (e) {
        this.ctx.log.error("router: peer {address}: {error}", { address: addr, error: (e as Error).message });
      }
    }
    this.#m.peersSyncTime.observe((performance.now() - peersStart) / 1000);
    this.#m.peers.set(this.#peers.size);
    // Originations.
    const wantO = new Map(plan.advertisements.map((a) => [a.prefix, a.nextHop]));
    for (const [prefix] of this.#origins) {
      if (!wantO.has(prefix)) {
        s.withdraw(prefix);
        this.#origins.delete(prefix);
        this.#m.advSent.inc({ type: "withdraw-vip" });
      }
    }
    for (const [prefix, nextHop] of wantO) {
      if (this.#origins.get(prefix) === nextHop) continue;
      s.originate(prefix, { nextHop, origin: 0 });
      this.#origins.set(prefix, nextHop);
      const kind = plan.advertisements.find((a) => a.prefix === prefix)?.kind;
      this.#m.advSent.inc({ type: kind === "pod-cidr" ? "pod-route" : "advertise-vip" });
    }
  }

  /**
   * One best-path change → one pending prefix (O(1); the flush does the kernel work). `nh`: the
   * new best path's next hop from a peer; null when none is left or the best one is ours.
   */
  #onBestPath(k: RibKey, nh: string | null): void {
    if (nh !== null) this.#m.advReceived.inc();
    const v = this.#learned.get(k);
    let prev: string | null;
    if (v !== undefined && typeof v !== "string") {
      // Already pending: only its current hop changes.
      prev = v.hop;
      if (prev === nh) return;
      v.hop = nh === null ? null : this.#hopRef(nh);
    } else {
      prev = v ?? null;
      if (prev === nh) return;
      const p: PendingPrefix = { key: k, kernel: prev, hop: nh === null ? null : this.#hopRef(nh) };
      this.#learned.set(k, p);
      const tail = this.#pending.at(-1);
      if (tail !== undefined && tail.length < DELTA_SLICE) tail.push(p);
      else this.#pending.push([p]);
    }
    if (prev !== null) {
      const h = this.#hops.get(prev)!;
      if (--h.n === 0) this.#hops.delete(prev);
    } else this.#learnedCount++;
    if (nh === null) this.#learnedCount--;
    // Before the first sync there is no route context: that sync's pass takes the changes.
    if (this.#routeCtx) this.#routesLane().trigger();
  }

  /** Counts one more prefix via `nh`; returns the interned string (one per next hop, however many prefixes use it). */
  #hopRef(nh: string): string {
    let h = this.#hops.get(nh);
    if (h === undefined) this.#hops.set(nh, h = { hop: nh, n: 0 });
    h.n++;
    return h.hop;
  }

  /** Puts pending prefixes back to plain values in `#learned` (or out of it). */
  #settle(block: readonly PendingPrefix[]): void {
    const learned = this.#learned;
    for (const p of block) {
      if (p.hop === null) learned.delete(p.key);
      else learned.set(p.key, p.hop);
    }
  }

  #updateHold(): void {
    if (!this.#holdStale) return;
    const s = this.#speaker;
    const now = Date.now();
    const peers = s?.peers() ?? [];
    const allUp = peers.length > 0 && peers.every((p) => p.state === "Established");
    if (allUp) {
      if (this.#allUpSince === 0) this.#allUpSince = now;
    } else this.#allUpSince = 0;
    const settled = (allUp && now - this.#allUpSince >= (this.deps.settleMs ?? 5000)) || peers.length === 0;
    if (settled || now >= this.#holdDeadline) {
      this.#holdStale = false;
      // Routes were kept: the full pass removes them. None kept: nothing to re-read.
      if (this.#staleKept > 0) this.#kernel = null;
    } else {
      // Re-check later so stale routes do go eventually.
      this.#routesLane().triggerAt(this.#clock.now() + 1000);
    }
  }

  /**
   * One pass of the routes lane: the pending per-prefix delta, or a full pass when the kernel
   * must be re-read (first pass, a changed route context, after a failure, the periodic repair).
   * Changes arriving meanwhile make the lane run once more. A failure goes to the lane: retried
   * with back-off, or reported by the sync waiting for it.
   */
  async #routesPass(): Promise<void> {
    const ctx = this.#routeCtx;
    if (!ctx) return;
    const now = this.#clock.now();
    if (this.#repairEveryMs > 0 && now - this.#lastFullAt >= this.#repairEveryMs) {
      this.#kernel = null; // re-read the kernel: repairs drift
    }
    this.#updateHold();
    try {
      const t0 = performance.now();
      const full = this.#kernel === null;
      const lines = full ? await this.#fullRoutes(ctx) : await this.flushRouteDelta();
      if (full) {
        this.#lastFullAt = this.#clock.now();
        if (this.#repairEveryMs > 0) this.#routesLane().triggerAt(this.#lastFullAt + this.#repairEveryMs);
      }
      this.#m.hostSyncTime.observe((performance.now() - t0) / 1000);
      this.#m.routesSynced.set(this.#synced.v4 + this.#synced.v6);
      this.stats.routeApplies++;
      this.stats.routeLines += lines;
      this.stats.lastRouteApplyAt = performance.now();
    } catch (e) {
      this.#kernel = null;
      this.lastRouteError = e as Error;
      throw e; // logged by the lane (or by the spine, through the sync that waits for it)
    }
  }

  *#learnedRoutes(): Generator<LearnedRoute> {
    for (const [k, v] of this.#learned) {
      const nextHop = typeof v === "string" ? v : v.hop;
      if (nextHop !== null) yield { prefix: ribKeyText(k), nextHop };
    }
  }

  /** Full pass: read our state from the kernel and diff every learned route against it. */
  async #fullRoutes(ctx: RouteContext): Promise<number> {
    const keep = this.#holdStale;
    // The plan and the pending set are taken together (synchronously): later events go to the
    // next delta with the next hops this plan installs as their "before".
    const kp = kernelPlan(this.#learnedRoutes(), ctx);
    // The overlay next hops this plan covers, taken at the same moment: a hop that appears while
    // the pass awaits the kernel is the next delta's to set up (neighbour, FDB, tunnel) before its
    // routes. Read after the awaits, it was counted as done and its routes went out without it.
    const auxKey = this.#overlayHops(ctx).join(",");
    for (const block of this.#pending) this.#settle(block);
    this.#pending = [];
    this.#failedPrefixes.clear();
    const cur = await readKernelState(this.ctx.runner, this.#families, { fou: ctx.overlay.encap === "fou" });
    const { state, lines, failed, refusedLines } = await applyKernelPlan(this.ctx.runner, kp, cur, keep);
    const lineError = this.#reportRefusedLines(refusedLines);
    let main = 0, kept = 0, added = 0, main6 = 0;
    const before = new Map<string, string>();
    for (const r of cur.routes) if ((r.table ?? 254) === 254) before.set(r.dst, r.via ?? "");
    const aux: KernelState = { ...state, routes: [] };
    for (const r of state.routes) {
      if ((r.table ?? 254) !== 254) aux.routes.push(r);
      else {
        main++;
        if (r.dst.includes(":")) main6++;
      }
    }
    for (const r of kp.routes) {
      if ((r.table ?? 254) === 254 && before.get(r.dst) !== r.via) added++;
    }
    if (keep) kept = main - kp.routes.filter((r) => (r.table ?? 254) === 254).length;
    for (const f of failed) {
      if (!f.op.del) this.#failedPrefixes.add(f.op.route.dst);
    }
    this.#reportFailures(failed);
    const removed = keep ? 0 : Math.max(0, before.size - (main - added));
    if (added) this.#m.routesAdded.inc({}, added);
    if (removed) this.#m.routesRemoved.inc({}, removed);
    this.#kernel = aux;
    this.#synced = { v4: main - main6, v6: main6 };
    this.#staleKept = Math.max(0, kept);
    this.#auxKey = auxKey;
    this.lastRouteError = null;
    if (lineError) throw lineError;
    return lines;
  }

  #overlayHops(ctx: RouteContext): string[] {
    if (!ctx.overlay.enabled || !this.#decider) return [];
    const out: string[] = [];
    for (const h of this.#hops.keys()) if (this.#decider.overlay(h)) out.push(h);
    return out.sort();
  }

  /**
   * Overlay lines the kernel refused: a line for a node (its tunnel, neighbour, FDB entry) is that
   * Node's, reported as refused; a line that names no node is returned as an error (the caller
   * fails, as before containment).
   */
  #reportRefusedLines(refused: readonly RefusedLine[]): Error | undefined {
    if (refused.length === 0) return undefined;
    const plan = this.#plan, snap = this.#snapshot;
    const other: RefusedLine[] = [];
    for (const r of refused) {
      const nodes = plan && snap ? nodesOfLine(plan, r.line, r.error) : [];
      if (nodes.length && snap) this.refused.add(nodes, (o) => nodeInstance(snap, o), Date.now());
      else other.push(r);
    }
    this.refused.publish();
    if (other.length === 0) return undefined;
    return new Error(
      `${other.length} overlay line(s) refused by the kernel, first: ${JSON.stringify(other[0].line)}: ${
        other[0].error
      }`,
    );
  }

  #reportFailures(all: ReadonlyArray<{ op: RouteOp; error: string }>): void {
    // A refused route to a node's pod CIDR (or through a node) is that Node's: reported as
    // refused, retried when it changes; the others' routes are applied. Others fail the sync.
    const failed: Array<{ op: RouteOp; error: string }> = [];
    for (const f of all) {
      const plan = this.#plan, snap = this.#snapshot;
      const reason = `the kernel refused route ${f.op.del ? "del" : "replace"} ${f.op.route.dst}${
        f.op.route.via ? ` via ${f.op.route.via}` : ""
      }: ${f.error}`;
      const nodes = plan && snap
        ? (nodesOfValue(plan, f.op.route.dst, reason).length
          ? nodesOfValue(plan, f.op.route.dst, reason)
          : nodesOfValue(plan, f.op.route.via ?? "", reason))
        : [];
      if (nodes.length && snap) this.refused.add(nodes, (o) => nodeInstance(snap, o), Date.now());
      else failed.push(f);
    }
    if (all.length) this.refused.publish();
    if (failed.length === 0) return;
    const f = failed[0];
    const err = new Error(
      `${failed.length} route change(s) refused by the kernel, first: ${
        f.op.del ? "del" : "replace"
      } ${f.op.route.dst}${f.op.route.via ? ` via ${f.op.route.via}` : ""}: ${f.error}`,
    );
    this.ctx.log.error("router: {error}", { error: err.message });
    this.lastRouteError = err;
  }

  /**
   * Writes the prefixes changed since the last flush (the per-prefix delta) and the overlay state
   * their next hops need; returns how many changes it wrote. A plain function of the controller's
   * state, run by the routes lane.
   */
  async flushRouteDelta(): Promise<number> {
    const ctx = this.#routeCtx, d = this.#decider, aux = this.#kernel;
    if (!ctx || !d || !aux) return 0;
    const keep = this.#holdStale;
    // Overlay neighbours/tunnels/table 77 for next hops that appeared: before their routes.
    let auxPlan: ReturnType<typeof overlayPlan> | null = null;
    let lines = 0;
    const hops = this.#overlayHops(ctx);
    const key = hops.join(",");
    if (key !== this.#auxKey) {
      auxPlan = overlayPlan(hops, ctx);
      const r = await applyKernelPlan(this.ctx.runner, { ...auxPlan, skipped: [] }, aux, true);
      this.#kernel = r.state;
      const lineError = this.#reportRefusedLines(r.refusedLines);
      if (lineError) throw lineError;
      lines += r.lines;
    }
    // In slices: memory stays bounded by the slice, not by the burst (a full table arrives as one
    // burst), and events arriving meanwhile join the pending set for a later slice. Two slices in
    // flight: the next is computed and queued on the channel (writes leave in order) while the
    // kernel installs the one before, so the kernel never waits for our next slice.
    let writing: Promise<number> | null = null;
    while (this.#pending.length > 0) {
      const next = this.#flushSlice(d);
      if (writing) {
        try {
          lines += await writing;
        } catch (e) {
          // The next slice's write is queued: let it end before the lane's retry re-reads the
          // kernel, so no pass runs beside it.
          await next.catch(() => {});
          throw e;
        }
      }
      writing = next;
    }
    if (writing) lines += await writing;
    // Overlay state of next hops no longer used: after their routes are gone.
    if (auxPlan) {
      if (!keep) {
        const r = await applyKernelPlan(this.ctx.runner, { ...auxPlan, skipped: [] }, this.#kernel!, false);
        this.#kernel = r.state;
        const lineError = this.#reportRefusedLines(r.refusedLines);
        if (lineError) throw lineError;
        lines += r.lines;
      }
      this.#auxKey = key;
    }
    return lines;
  }

  /**
   * Takes up to DELTA_SLICE pending prefixes, writes their changes, accounts for the outcome.
   * A withdrawal is written even while the start-up hold keeps stale routes: the hold is for
   * routes a previous run left in the kernel, which nobody has re-advertised yet; a route learned
   * in this run and then withdrawn (its peer left, or said so) would only blackhole its prefix.
   */
  async #flushSlice(d: RouteDecider): Promise<number> {
    const dels: RouteOp[] = [];
    const reps: RouteOp[] = [];
    // Counted here, added to `#synced` once the kernel has acknowledged the writes.
    const syn = { v4: 0, v6: 0 };
    const count = (key: RibKey, n: number) => {
      if (typeof key === "string" && key.indexOf(":") >= 0) syn.v6 += n;
      else syn.v4 += n;
    };
    let lost = 0;
    /** Routes new to the kernel (a refused one is then not counted as installed). */
    const fresh: Route[] = [];
    const retrying = this.#failedPrefixes;
    // Taken out and settled first: a change arriving while this slice is written starts a new
    // pending entry (in a new block) with the hop this slice installs as its "before".
    const block = this.#pending.shift()!;
    this.#settle(block);
    for (const { key: k, kernel: prev, hop: cur } of block) {
      const dst = ribKeyText(k);
      const retry = retrying.size > 0 && retrying.has(dst);
      // Withdrawn and re-learned through the same hop since the last flush: nothing to write.
      if (cur === prev && !retry) {
        this.stats.deltaMerged++;
        continue;
      }
      const after = cur === null ? null : d.route(dst, cur);
      const before = prev === null ? null : d.route(dst, prev);
      if (!retry && (before === after || (before && after && sameRoute(before, after)))) {
        this.stats.deltaMerged++;
        continue;
      }
      if (after) {
        reps.push({ del: false, route: after });
        if (!before) {
          count(k, 1);
          fresh.push(after);
        }
      } else if (before || retry) {
        dels.push({ del: true, route: before ?? { dst } });
        if (before) {
          lost++;
          count(k, -1);
        }
      }
    }
    const ops = dels.length === 0 ? reps : reps.length === 0 ? dels : dels.concat(reps);
    const w = await writeRoutes(this.ctx.runner, ops);
    this.stats.deltaOps += ops.length;
    let refused = 0;
    const freshSet = w.failed.length > 0 ? new Set(fresh) : null;
    if (retrying.size > 0) { for (const op of ops) retrying.delete(op.route.dst); }
    for (const f of w.failed) {
      if (!f.op.del) {
        retrying.add(f.op.route.dst);
        refused++;
        if (freshSet?.has(f.op.route)) count(f.op.route.dst, -1);
      }
    }
    this.#reportFailures(w.failed);
    if (w.failed.length === 0) this.lastRouteError = null;
    this.#synced.v4 += syn.v4;
    this.#synced.v6 += syn.v6;
    if (reps.length - refused > 0) this.#m.routesAdded.inc({}, reps.length - refused);
    if (lost) this.#m.routesRemoved.inc({}, lost);
    return ops.length;
  }

  /** Learned routes of ours the kernel acknowledged in its main table (tests, benchmarks). */
  get routesInstalled(): { v4: number; v6: number } {
    return { ...this.#synced };
  }

  /** Best paths learned from peers (tests, benchmarks). */
  get routesLearned(): number {
    return this.#learnedCount;
  }

  /** Waits until queued route work is applied (tests, benchmarks). */
  async flushRoutes(): Promise<void> {
    await this.#routes?.idle();
  }
}

function peerConfig(p: PeerPlan, plan: RouterPlan): PeerConfig {
  const { kind: _k, origin: _o, ...rest } = p;
  const pc: PeerConfig = { ...rest };
  // Dual-stack over one session: announce each family's own next hop.
  if (plan.local?.ipv4 && p.address.includes(":")) pc.nextHopIpv4 = plan.local.ipv4;
  if (plan.local?.ipv6 && !p.address.includes(":")) pc.nextHopIpv6 = plan.local.ipv6;
  return pc;
}

/** Re-exported for `mod.ts`. */
export type { HostFacts };

/** The speaker's configuration, peers and advertisements as `--dry-run` prints them (no speaker is started). */
/**
 * Under `--dry-run` no peer is up, so nothing is learned: this shows the routes and tunnels the
 * full mesh would bring, each remote node's pod CIDRs via that node, through the same
 * `kernelPlan` the live path uses.
 */
export function describeExpectedRoutes(plan: RouterPlan, ctx: RouteContext): string {
  const learned = plan.remoteNodes.flatMap((n) =>
    n.podCIDRs.flatMap((prefix) => {
      const nextHop = prefix.includes(":") ? n.ipv6 : n.ipv4;
      return nextHop ? [{ prefix, nextHop }] : [];
    })
  );
  const k = kernelPlan(learned, ctx);
  const lines = [
    ...k.tunnels.map((t) =>
      `# tunnel ${t.name} ${t.encap}${
        t.encap === "fou" ? ` port ${t.encapPort}` : ""
      } local ${t.local} remote ${t.remote}`
    ),
    ...(k.vxlan ? [`# vxlan device ${VXLAN_DEV}: ${k.fdb.map((f) => `vtep ${f.dst}`).join(", ")}`] : []),
    ...k.routes.map((r) =>
      `# route ${r.dst}${r.via ? ` via ${r.via}` : ""}${r.dev ? ` dev ${r.dev}` : ""}${
        r.onlink ? " onlink" : ""
      }${r.table ? ` table ${r.table}` : ""} (expected once the peers are up)`
    ),
    ...k.rules.map((r) => `# rule from ${r.from} lookup ${r.table}`),
    ...k.skipped.map((l) =>
      `# no route to ${l.prefix}: next hop ${l.nextHop} is off-subnet and the overlay is off`
    ),
  ];
  return lines.length ? lines.join("\n") + "\n" : "";
}

const WELL_KNOWN: Record<number, string> = {
  0xffffff01: "no-export",
  0xffffff02: "no-advertise",
  0xffffff03: "no-export-subconfed",
  0xffff029a: "blackhole",
};

function community(c: number): string {
  return WELL_KNOWN[c] ?? `${c >>> 16}:${c & 0xffff}`;
}

/** What `--dry-run` says about a peer: kind, then each setting that departs from a plain session. */
function peerTraits(p: PeerPlan): string[] {
  const out: string[] = [p.kind];
  if (p.port !== 179) out.push(`port ${p.port}`);
  if (p.routeReflectorClient) out.push("route-reflector client");
  if (p.password) out.push("TCP MD5 password");
  if (p.multihopTtl) out.push(`multihop ttl ${p.multihopTtl}`);
  if (p.bfd?.enabled) {
    out.push(
      `BFD ${p.bfd.desiredMinTxMs ?? 1000}/${p.bfd.requiredMinRxMs ?? 1000} ms x${
        p.bfd.detectMultiplier ?? 3
      }`,
    );
  }
  for (const st of p.exportPolicy?.statements ?? []) {
    const a = st.actions;
    if (a.addCommunities?.length) {
      out.push(`export adds communities ${a.addCommunities.map(community).join(" ")}`);
    }
    if (a.asPathPrepend) out.push(`export prepends AS${a.asPathPrepend.asn} x${a.asPathPrepend.count}`);
    if (a.nextHop === "self") out.push("export next-hop self");
  }
  return [...new Set(out)];
}

export function describeBgpPlan(plan: RouterPlan): string {
  const sp = plan.speaker!;
  const lines = [
    `# bgp speaker: asn ${sp.asn} router-id ${sp.routerId} listen ${sp.listenAddresses.join(",")}:${sp.port}${
      sp.gracefulRestart ? " graceful-restart" : ""
    }${sp.clusterId ? ` route-reflector cluster-id ${sp.clusterId}` : ""}`,
    ...plan.peers.map((p) => `# bgp peer ${p.address} asn ${p.asn} (${peerTraits(p).join(", ")})`),
    ...plan.advertisements.map((a) => `# bgp advertise ${a.prefix} next-hop ${a.nextHop} (${a.kind})`),
  ];
  return lines.join("\n") + "\n";
}

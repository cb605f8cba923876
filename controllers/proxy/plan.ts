/**
 * The proxy plan: snapshot + options + node identity → the table of virtual services and real
 * servers, the VIPs for `kube-dummy-if`, the proxy's ipset contents, reject entries, DSR marks and
 * health-check ports. Pure: no I/O, no clock, no randomness (endpoints are sorted; the kernel's
 * scheduler does the spreading).
 *
 * @module
 */
import type {
  ClusterSnapshot,
  EndpointSliceInfo,
  PodInfo,
  Protocol,
  ServiceInfo,
  ServicePort,
} from "../../watch/types.ts";
import {
  ANNOTATION,
  dsrFwmark,
  hasAnnotation,
  HEADLESS_LABEL,
  OUR_PROXY_NAME,
  parseDsr,
  parseSchedFlags,
  parseScheduler,
  SERVICE_PROXY_NAME_LABEL,
} from "./annotations.ts";
import { resolveConflicts } from "./conflicts.ts";
import { anyCidrContains, canonicalIp, type Cidr, type Family, hostCidr, ipFamily, parseCidr } from "./ip.ts";
import type {
  DsrMark,
  HealthCheck,
  NodeIdentity,
  PlanWarning,
  ProxyOptions,
  ProxyPlan,
  RealServer,
  RejectEntry,
  VipKind,
  VirtualService,
} from "./types.ts";
import { hostPort } from "../../net/ip.ts";

/** The identity of an address/port virtual service: "tcp/10.96.0.1:80". */
export function serviceKey(protocol: Protocol, vip: string, port: number): string {
  return `${protocol.toLowerCase()}/${hostPort(vip, port)}`;
}

/** The identity of a firewall-mark virtual service: "fwm/4242/v4". */
export function fwmarkKey(fwmark: number, family: Family): string {
  return `fwm/${fwmark}/v${family}`;
}

function parseCidrs(list: readonly string[], field: string, warnings: PlanWarning[]): Cidr[] {
  const out: Cidr[] = [];
  for (const text of list) {
    const c = parseCidr(text);
    if (c) out.push(c);
    else {
      warnings.push({
        service: "",
        field,
        message: `bad CIDR ${JSON.stringify(text)} ignored; expected a.b.c.d/n or x::/n`,
      });
    }
  }
  return out;
}

function validPort(p: number): boolean {
  return Number.isInteger(p) && p >= 1 && p <= 65535;
}

interface Ctx {
  options: ProxyOptions;
  node: NodeIdentity;
  families: Family[];
  clusterCidrs: Cidr[];
  externalCidrs: Cidr[];
  lbCidrs: Cidr[];
  pods: ReadonlyMap<string, PodInfo>;
  warnings: PlanWarning[];
  fwmarks: Map<number, string>;
}

/** One service's share of the plan (what the planner caches). */
interface ServiceOutput {
  services: VirtualService[];
  rejects: RejectEntry[];
  healthChecks: HealthCheck[];
  dsrMarks: DsrMark[];
  warnings: PlanWarning[];
  /** This service's entries of kube-router-svip / -svip-prt and kube-dummy-if, per family. */
  svip: Array<[Family, string]>;
  svipPort: Array<[Family, string]>;
  dummy: string[];
}

/** The plan-wide lists built from every service's output (reused while no service's share changed). */
interface Aggregates {
  keys: string[];
  rejects: RejectEntry[];
  healthChecks: HealthCheck[];
  dsrMarks: DsrMark[];
  warnings: PlanWarning[];
  svip: Record<Family, string[]>;
  svipPort: Record<Family, string[]>;
  dummy: string[];
}

/** What the Planner remembers between plans. */
interface PlanMemo {
  services: Map<string, { svc: ServiceInfo; slices: EndpointSliceInfo[]; out: ServiceOutput }>;
  /** Sorted service keys of the last plan (reused while the key set is unchanged). */
  keys?: string[];
  /** Plan-wide lists of the last plan. */
  agg?: Aggregates;
}

/** Whether two outputs of one service contribute the same to the plan-wide lists. */
function sameAux(a: ServiceOutput, b: ServiceOutput): boolean {
  const aux = (o: ServiceOutput) =>
    JSON.stringify([o.rejects, o.healthChecks, o.dsrMarks, o.warnings, o.svip, o.svipPort, o.dummy]);
  return aux(a) === aux(b);
}

function aggregate(keys: string[], outs: ServiceOutput[]): Aggregates {
  const agg: Aggregates = {
    keys,
    rejects: [],
    healthChecks: [],
    dsrMarks: [],
    warnings: [],
    svip: { 4: [], 6: [] },
    svipPort: { 4: [], 6: [] },
    dummy: [],
  };
  const svip = { 4: new Set<string>(), 6: new Set<string>() },
    svipPort = { 4: new Set<string>(), 6: new Set<string>() };
  const dummy = new Set<string>();
  for (const out of outs) {
    agg.rejects.push(...out.rejects);
    agg.healthChecks.push(...out.healthChecks);
    agg.dsrMarks.push(...out.dsrMarks);
    agg.warnings.push(...out.warnings);
    for (const [f, v] of out.svip) svip[f].add(v);
    for (const [f, v] of out.svipPort) svipPort[f].add(v);
    for (const d of out.dummy) dummy.add(d);
  }
  agg.healthChecks.sort((a, b) => a.port - b.port);
  agg.dsrMarks.sort((a, b) => a.fwmark - b.fwmark);
  agg.svip = { 4: [...svip[4]], 6: [...svip[6]] };
  agg.svipPort = { 4: [...svipPort[4]], 6: [...svipPort[6]] };
  agg.dummy = [...dummy];
  return agg;
}

/** Service keys in sorted order, reusing the last sort while the set of keys is unchanged. */
function sortedKeys(services: ReadonlyMap<string, ServiceInfo>, memo: PlanMemo | undefined): string[] {
  const last = memo?.keys;
  if (last && last.length === services.size && last.every((k) => services.has(k))) return last;
  const keys = [...services.keys()].sort();
  if (memo) memo.keys = keys;
  return keys;
}

function sameRefs<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * A planner that remembers each service's share of the last plan and reuses it while the service
 * object and its EndpointSlice objects are the same objects (snapshots share unchanged objects),
 * so one endpoint change costs one service's planning, not ten thousand. Options or node changes
 * clear the memory; DSR services are always recomputed (their firewall marks depend on each other).
 * The result equals `plan()`'s.
 */
export class Planner {
  #memo: PlanMemo = { services: new Map() };
  #ctxKey = "";

  plan(snapshot: ClusterSnapshot, options: ProxyOptions, node: NodeIdentity): ProxyPlan {
    const ctxKey = JSON.stringify([options, node]);
    if (ctxKey !== this.#ctxKey) {
      this.#memo = { services: new Map() };
      this.#ctxKey = ctxKey;
    }
    return planWith(snapshot, options, node, this.#memo);
  }
}

/** Computes the proxy's desired state for one node. */
export function plan(snapshot: ClusterSnapshot, options: ProxyOptions, node: NodeIdentity): ProxyPlan {
  return planWith(snapshot, options, node, undefined);
}

function planWith(
  snapshot: ClusterSnapshot,
  options: ProxyOptions,
  node: NodeIdentity,
  memo: PlanMemo | undefined,
): ProxyPlan {
  const warnings: PlanWarning[] = [];
  const families: Family[] = [];
  if (options.enableIpv4) families.push(4);
  if (options.enableIpv6) families.push(6);
  const ctx: Ctx = {
    options,
    node,
    families,
    clusterCidrs: parseCidrs(options.serviceClusterIpRange, "--service-cluster-ip-range", warnings),
    externalCidrs: parseCidrs(options.serviceExternalIpRange, "--service-external-ip-range", warnings),
    lbCidrs: parseCidrs(options.loadbalancerIpRange, "--loadbalancer-ip-range", warnings),
    pods: snapshot.pods,
    warnings,
    fwmarks: new Map(),
  };

  const slicesByService = new Map<string, EndpointSliceInfo[]>();
  for (const s of snapshot.endpointSlices.values()) {
    if (s.serviceName === "") continue;
    const k = `${s.namespace}/${s.serviceName}`;
    const list = slicesByService.get(k);
    if (list) list.push(s);
    else slicesByService.set(k, [s]);
  }

  const nodeIps: Partial<Record<Family, string>> = {};
  if (node.ipv4 && families.includes(4)) nodeIps[4] = node.ipv4;
  if (node.ipv6 && families.includes(6)) nodeIps[6] = node.ipv6;
  const localAll = uniqSorted([
    ...node.localAddresses.map((a) => canonicalIp(a) ?? a),
    ...Object.values(nodeIps),
  ]);
  const local = new Set(localAll);
  const byFam = (list: string[], f: Family) => list.filter((a) => ipFamily(a) === f);

  // Everything below is concatenation of per-service outputs (cached by the Planner), in service
  // key order, each service's own entries sorted: deterministic without sorting 10k-entry lists.
  const services: VirtualService[] = [];
  const outs: ServiceOutput[] = [];
  const keys = sortedKeys(snapshot.services, memo);
  const lastAgg = memo?.agg;
  let auxChanged = !lastAgg || lastAgg.keys !== keys;
  for (const key of keys) {
    const svc = snapshot.services.get(key)!;
    const slices = slicesByService.get(`${svc.namespace}/${svc.name}`) ?? [];
    if (slices.length > 1) slices.sort((a, b) => cmp(a.name, b.name));
    const cached = memo?.services.get(key);
    let out: ServiceOutput;
    if (
      cached && cached.svc === svc && sameRefs(cached.slices, slices) &&
      !hasAnnotation(svc.annotations, ANNOTATION.dsr)
    ) out = cached.out;
    else {
      out = {
        services: [],
        rejects: [],
        healthChecks: [],
        dsrMarks: [],
        warnings: [],
        svip: [],
        svipPort: [],
        dummy: [],
      };
      planService(
        { ...ctx, warnings: out.warnings },
        svc,
        slices,
        out.services,
        out.rejects,
        out.healthChecks,
        out.dsrMarks,
      );
      out.services.sort((a, b) => cmp(a.key, b.key));
      for (const vs of out.services) {
        if (vs.fwmark !== 0) continue;
        out.svip.push([vs.family, vs.vip]);
        out.svipPort.push([vs.family, `${vs.vip},${vs.protocol.toLowerCase()}:${vs.port}`]);
        if (vs.kind !== "nodeport" && !local.has(vs.vip)) out.dummy.push(hostCidr(vs.vip));
      }
      if (!auxChanged && (!cached || !sameAux(cached.out, out))) auxChanged = true;
      memo?.services.set(key, { svc, slices, out });
    }
    outs.push(out);
    for (let i = 0; i < out.services.length; i++) services.push(out.services[i]);
  }
  if (memo && memo.services.size > keys.length) {
    for (const k of memo.services.keys()) if (!snapshot.services.has(k)) memo.services.delete(k);
  }
  // Plan-wide lists: rebuilt only when some service's share of them changed.
  const agg = !auxChanged && lastAgg ? lastAgg : aggregate(keys, outs);
  if (memo) memo.agg = agg;
  // Two Services on one address:port: the oldest wins (conflicts.ts).
  const resolved = resolveConflicts(services, agg.rejects, snapshot.services);

  return {
    services: resolved.services,
    dummyAddresses: agg.dummy,
    rejects: resolved.rejects,
    healthChecks: agg.healthChecks,
    dsrMarks: agg.dsrMarks,
    sets: {
      localIps: { 4: byFam(localAll, 4), 6: byFam(localAll, 6) },
      svip: agg.svip,
      svipPort: agg.svipPort,
    },
    nodeIps,
    nodePortIps: { 4: nodePortIps(ctx, 4), 6: nodePortIps(ctx, 6) },
    podCIDRs: {
      4: node.podCIDRs.filter((c) => parseCidr(c)?.family === 4),
      6: node.podCIDRs.filter((c) => parseCidr(c)?.family === 6),
    },
    nodeMtu: node.mtu ?? 1500,
    timeouts: {
      tcp: Math.floor(options.serviceTcpTimeout / 1000),
      tcpfin: Math.floor(options.serviceTcpfinTimeout / 1000),
      udp: Math.floor(options.serviceUdpTimeout / 1000),
    },
    warnings: [...warnings, ...agg.warnings, ...resolved.warnings],
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function uniqSorted(list: string[]): string[] {
  return [...new Set(list)].sort();
}

function nodePortIps(ctx: Ctx, fam: Family): string[] {
  if (!ctx.families.includes(fam)) return [];
  if (ctx.options.nodeportBindonAllIp) {
    return uniqSorted(
      ctx.node.localAddresses.filter((a) => ipFamily(a) === fam).map((a) => canonicalIp(a) ?? a),
    );
  }
  const ip = fam === 4 ? ctx.node.ipv4 : ctx.node.ipv6;
  return ip ? [canonicalIp(ip) ?? ip] : [];
}

/** Why a service is not ours to serve, or undefined when it is. */
export function skipReason(svc: ServiceInfo): string | undefined {
  const proxyName = svc.labels[SERVICE_PROXY_NAME_LABEL];
  if (proxyName !== undefined && proxyName !== OUR_PROXY_NAME) return `meant for proxy ${proxyName}`;
  if (svc.type === "ExternalName") return "ExternalName";
  if (svc.headless || hasAnnotation(svc.labels, HEADLESS_LABEL)) return "headless";
  return undefined;
}

function planService(
  ctx: Ctx,
  svc: ServiceInfo,
  slices: EndpointSliceInfo[],
  services: VirtualService[],
  rejects: RejectEntry[],
  healthChecks: HealthCheck[],
  dsrMarks: DsrMark[],
): void {
  if (skipReason(svc) !== undefined) return;
  const id = `${svc.namespace}/${svc.name}`;
  const warn = (field: string, message: string) => ctx.warnings.push({ service: id, field, message });
  const a = svc.annotations;

  const sched = parseScheduler(a);
  if (sched.warning) warn(sched.warning.field, sched.warning.message);
  const flags = parseSchedFlags(a, sched.value);
  if (flags.warning) warn(flags.warning.field, flags.warning.message);
  const dsrParsed = parseDsr(a);
  if (dsrParsed.warning) warn(dsrParsed.warning.field, dsrParsed.warning.message);
  let dsr = dsrParsed.value;
  if (dsr && backedByHostNetwork(ctx, slices)) {
    warn(
      `annotations[${ANNOTATION.dsr}]`,
      "DSR refused: a backing pod uses hostNetwork; serving without DSR",
    );
    dsr = false;
  }
  const hairpin = ctx.options.hairpinMode || hasAnnotation(a, ANNOTATION.hairpin);
  const hairpinExternal = hairpin && hasAnnotation(a, ANNOTATION.hairpinExternalIps);
  const externalLocal = svc.externalTrafficPolicy === "Local" || a[ANNOTATION.local] === "true";
  const internalLocal = svc.internalTrafficPolicy === "Local";
  const persistence = svc.sessionAffinity === "ClientIP"
    ? (svc.sessionAffinityTimeout > 0 ? svc.sessionAffinityTimeout : 10800)
    : 0;
  const skipLb = hasAnnotation(a, ANNOTATION.skipLbIps);

  const externalIps = validatedIps(ctx, svc.externalIPs, ctx.externalCidrs, "spec.externalIPs", warn);
  const lbIps = skipLb ? [] : validatedIps(
    ctx,
    svc.loadBalancerIPs.filter((i) => i.ip !== "" && i.ipMode !== "Proxy").map((i) => i.ip),
    ctx.lbCidrs,
    "status.loadBalancer.ingress",
    warn,
  );

  let localEndpointCount = 0;
  let anyReady = false;
  for (const sp of svc.ports) {
    if (!validPort(sp.port)) {
      warn(`spec.ports[${sp.name || sp.port}].port`, `port ${sp.port} out of range 1-65535; port skipped`);
      continue;
    }
    const portLabel = sp.name || String(sp.port);
    for (const fam of ctx.families) {
      const eps = endpointsFor(ctx, slices, sp, fam);
      localEndpointCount += eps.filter((e) => e.local && e.weight > 0).length;
      if (!anyReady && eps.some((e) => e.weight > 0)) anyReady = true;
      const vips: Array<{ vip: string; kind: VipKind; port: number; localOnly: boolean }> = [];
      for (const ip of svc.clusterIPs) {
        const c = canonicalIp(ip);
        if (c && ipFamily(c) === fam) {
          vips.push({ vip: c, kind: "clusterip", port: sp.port, localOnly: internalLocal });
        }
      }
      if ((svc.type === "NodePort" || svc.type === "LoadBalancer") && sp.nodePort !== 0) {
        if (!validPort(sp.nodePort)) {
          warn(`spec.ports[${portLabel}].nodePort`, `nodePort ${sp.nodePort} out of range 1-65535; skipped`);
        } else {
          for (const ip of nodePortIps(ctx, fam)) {
            vips.push({ vip: ip, kind: "nodeport", port: sp.nodePort, localOnly: externalLocal });
          }
        }
      }
      for (const ip of externalIps) {
        if (ipFamily(ip) === fam) {
          vips.push({ vip: ip, kind: "externalip", port: sp.port, localOnly: externalLocal });
        }
      }
      for (const ip of lbIps) {
        if (ipFamily(ip) === fam) {
          vips.push({ vip: ip, kind: "loadbalancer", port: sp.port, localOnly: externalLocal });
        }
      }

      for (const v of vips) {
        const rs = v.localOnly ? eps.filter((e) => e.local) : eps;
        if (v.localOnly && eps.length > 0 && rs.length === 0) continue; // upstream: no local endpoint, no service
        const useDsr = dsr && (v.kind === "externalip" || v.kind === "loadbalancer");
        let fwmark = 0;
        if (useDsr) {
          fwmark = dsrFwmark(v.vip, sp.protocol, v.port, ctx.fwmarks);
          dsrMarks.push({
            service: id,
            family: fam,
            vip: v.vip,
            protocol: sp.protocol,
            port: v.port,
            fwmark,
          });
        }
        services.push({
          key: fwmark ? fwmarkKey(fwmark, fam) : serviceKey(sp.protocol, v.vip, v.port),
          family: fam,
          kind: v.kind,
          service: id,
          portName: sp.name,
          vip: v.vip,
          protocol: sp.protocol,
          port: v.port,
          fwmark,
          scheduler: sched.value,
          schedFlags: flags.value,
          persistence,
          forward: useDsr ? "tunnel" : "masq",
          masquerade: ctx.options.masqueradeAll || (v.kind !== "clusterip" && !v.localOnly && !useDsr),
          hairpin: hairpin && (v.kind === "clusterip" || v.kind === "nodeport" || hairpinExternal),
          localOnly: v.localOnly,
          realServers: rs,
        });
        if (!rs.some((r) => r.weight > 0) && !useDsr) {
          rejects.push({ service: id, family: fam, vip: v.vip, protocol: sp.protocol, port: v.port });
        }
      }
    }
  }
  if (externalLocal && svc.healthCheckNodePort !== 0) {
    if (!validPort(svc.healthCheckNodePort)) {
      warn(
        "spec.healthCheckNodePort",
        `port ${svc.healthCheckNodePort} out of range 1-65535; no health check`,
      );
    } else {
      healthChecks.push({ service: id, port: svc.healthCheckNodePort, localEndpoints: localEndpointCount });
    }
  }
  if (!anyReady) {
    warn("endpoints", "service has no ready endpoints; traffic to it is rejected");
  }
}

/**
 * External and LoadBalancer IPs after validation: malformed ones are dropped; with strict
 * validation (upstream default) an address must lie in its configured range, and no address may
 * lie inside the service cluster range.
 */
function validatedIps(
  ctx: Ctx,
  ips: readonly string[],
  ranges: Cidr[],
  field: string,
  warn: (field: string, message: string) => void,
): string[] {
  const out: string[] = [];
  for (const raw of ips) {
    const ip = canonicalIp(raw.trim());
    if (!ip) {
      warn(field, `${JSON.stringify(raw)} is not an IP address; skipped`);
      continue;
    }
    if (anyCidrContains(ctx.clusterCidrs, ip)) {
      warn(field, `${ip} lies inside --service-cluster-ip-range; skipped`);
      continue;
    }
    if (ctx.options.strictExternalIpValidation && !anyCidrContains(ranges, ip)) {
      const flag = ranges === ctx.lbCidrs ? "--loadbalancer-ip-range" : "--service-external-ip-range";
      warn(field, `${ip} is outside ${flag} (strict validation); skipped`);
      continue;
    }
    if (!out.includes(ip)) out.push(ip);
  }
  return out;
}

function backedByHostNetwork(ctx: Ctx, slices: EndpointSliceInfo[]): boolean {
  for (const s of slices) {
    for (const e of s.endpoints) {
      if (e.targetPod && ctx.pods.get(e.targetPod)?.hostNetwork) return true;
    }
  }
  return false;
}

/**
 * Real servers of one service port and family, from its EndpointSlices: ready endpoints at
 * weight 1, serving-but-terminating ones at weight 0 (drained: existing connections finish, no
 * new ones), everything else left out. FQDN slices and the other family are ignored.
 */
function endpointsFor(ctx: Ctx, slices: EndpointSliceInfo[], sp: ServicePort, fam: Family): RealServer[] {
  const byKey = new Map<string, RealServer>();
  for (const s of slices) {
    if (s.addressType !== (fam === 4 ? "IPv4" : "IPv6")) continue;
    const port = s.ports.find((p) => p.name === sp.name && p.protocol === sp.protocol);
    if (!port || !validPort(port.port)) continue;
    for (const e of s.endpoints) {
      const weight = e.ready ? 1 : e.serving && e.terminating ? 0 : -1;
      if (weight < 0) continue;
      for (const raw of e.addresses) {
        const ip = canonicalIp(raw);
        if (!ip || ipFamily(ip) !== fam) continue;
        const k = hostPort(ip, port.port);
        const prev = byKey.get(k);
        if (prev && prev.weight >= weight) continue;
        byKey.set(k, { ip, port: port.port, weight, local: e.nodeName === ctx.node.name, pod: e.targetPod });
      }
    }
  }
  return [...byKey.values()].sort((x, y) => cmp(hostPort(x.ip, x.port), hostPort(y.ip, y.port)));
}

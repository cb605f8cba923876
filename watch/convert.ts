/**
 * Converts Kubernetes API objects in their wire form (plain JSON as the API serves them, as
 * YAML manifests hold them) into the normalised snapshot types. Only the wire form: typed
 * client models rename reserved words (client-node's `from` is `_from`), which is why the API
 * source (`api.ts`, `kube/`) never builds them. Defaults the API server would fill in are
 * filled here, so manifests written by hand behave like objects read from a cluster.
 *
 * This is the edge where bad input is stopped. Every value that can reach a kernel transaction
 * (addresses, prefixes, ports, protocols, names, timeouts) is checked here, once per object
 * change, and reported through the `report` sink as one line naming object, field and value.
 * What an invalid field drops is only what depends on it (see docs/operator-guide.md, "Errors"):
 *
 * - an address or prefix that does not parse is left out of its list (a pod IP, a Service's
 *   cluster/external IP, an endpoint address, a node address or pod CIDR); valid ones are kept
 *   in canonical text (the kernel prints them so, and state verification compares text);
 * - a port entry with a bad number or protocol is left out, with the rest of the object;
 * - a NetworkPolicy never loses its isolation: a bad peer or port is left out of its rule, a
 *   rule left with no peer or no port is dropped whole (it allows nothing, never "anything"),
 *   and a policy whose podSelector cannot be read selects every pod of its namespace with no
 *   allow rule (deny) rather than being skipped (allow-all).
 *
 * Only an object that cannot be identified at all (no or malformed name, unknown Service type
 * or EndpointSlice address type) throws a `ConfigError`; the sources log it and skip that object.
 *
 * @module
 */
import { ConfigError } from "../errors/mod.ts";
import { canonicalIp, formatCidr, ipFamily, parseCidr } from "../net/ip.ts";
import type {
  ContainerPort,
  EndpointPort,
  EndpointSliceInfo,
  IpFamily,
  LabelSelector,
  NamespaceInfo,
  NetworkPolicyInfo,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  NetworkPolicyRule,
  NodeInfo,
  PodInfo,
  Protocol,
  ResourceKind,
  ServiceInfo,
  ServicePort,
} from "./types.ts";

// deno-lint-ignore no-explicit-any
type Obj = any;

/** Receives one line per field the conversion left out or defaulted. */
export type ProblemSink = (message: string) => void;

const ignore: ProblemSink = () => {};

const str = (v: unknown): string => (typeof v === "string" ? v : "");
const rec = (v: unknown): Record<string, string> =>
  v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)])) : {};
const arr = <T = Obj>(v: unknown): T[] => (Array.isArray(v) ? v as T[] : []);
const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

function ident(obj: Obj, kind?: string): string {
  const ns = str(obj?.metadata?.namespace);
  const name = str(obj?.metadata?.name);
  return `${str(obj?.kind) || kind || "object"} ${ns ? `${ns}/` : ""}${
    name ? (NAME.test(name) ? name : show(name)) : "<unnamed>"
  }`;
}

/** A reporter bound to one object: `bad(field, value, reason)`. */
function reporter(obj: Obj, kind: string, report: ProblemSink) {
  const id = ident(obj, kind);
  return (field: string, value: unknown, reason: string) =>
    report(`${id}: ${field} ${show(value)} ${reason}`);
}
type Bad = ReturnType<typeof reporter>;

/** DNS-1123 subdomain: what the API server allows as a name or namespace of these kinds. */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function requireName(obj: Obj, kind: string): string {
  const name = str(obj?.metadata?.name);
  if (!name) throw new ConfigError(`${ident(obj, kind)}: metadata.name is missing`);
  if (!NAME.test(name)) {
    throw new ConfigError(
      `${ident(obj, kind)}: metadata.name ${
        show(name)
      } is not a DNS-1123 name (lower-case letters, digits, ` +
        "'-' and '.'); object skipped",
    );
  }
  return name;
}

function namespaceOf(obj: Obj, kind: string): string {
  const ns = obj?.metadata?.namespace;
  if (ns === undefined || ns === null || ns === "") return "default";
  if (typeof ns !== "string" || !NAME.test(ns) || ns.length > 63) {
    throw new ConfigError(
      `${ident(obj, kind)}: metadata.namespace ${show(ns)} is not a DNS-1123 label; object skipped`,
    );
  }
  return ns;
}

function timestamp(v: unknown): string | null {
  if (v instanceof Date) return v.toISOString();
  return typeof v === "string" && v !== "" ? v : null;
}

/** `metadata.creationTimestamp` as ISO text, "" when absent (manifests): the tie-breaker of conflicts. */
function created(obj: Obj): string {
  return timestamp(obj?.metadata?.creationTimestamp) ?? "";
}

/** Protocol of a port entry (absent means TCP); undefined (reported) when unknown. */
function protocol(bad: Bad, field: string, v: unknown, what: string): Protocol | undefined {
  if (v === undefined || v === null || v === "") return "TCP";
  if (v === "TCP" || v === "UDP" || v === "SCTP") return v;
  bad(field, v, `is not a protocol (accepted: TCP, UDP, SCTP); ${what}`);
  return undefined;
}

/** A port number 1-65535 (numbers or decimal strings), else undefined. */
function portNumber(v: unknown): number | undefined {
  const n = typeof v === "number" ? v : (typeof v === "string" && /^\d{1,5}$/.test(v) ? Number(v) : NaN);
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
}

/** IANA_SVC_NAME, as the API validates a named port. */
const PORT_NAME = /^(?=.*[a-z])(?!-)(?!.*--)[a-z0-9-]{1,15}(?<!-)$/;

/** Canonical address, or undefined (reported) when `v` is not an IP address (of `family`, if given). */
function address(bad: Bad, field: string, v: unknown, what: string, family?: 4 | 6): string | undefined {
  // Leading zeros are read as decimal, as the API server's own (legacy, "sloppy") parser does:
  // it accepts "01.2.3.4" in Service, Endpoints and EndpointSlice addresses and means 1.2.3.4.
  const ip = typeof v === "string" ? canonicalIp(v, { leadingZeros: true }) : null;
  if (ip === null) {
    bad(field, v, `is not an IP address; ${what}`);
    return undefined;
  }
  // The unspecified address means "any" to the kernel: no set can hold it as one host.
  if (ip === "0.0.0.0" || ip === "::") {
    bad(field, v, `is the unspecified address, not a host; ${what}`);
    return undefined;
  }
  if (family && ipFamily(ip) !== family) {
    bad(field, v, `is not an IPv${family} address; ${what}`);
    return undefined;
  }
  return ip;
}

/** The valid addresses of a list, canonical, each invalid one reported. */
function addresses(bad: Bad, field: string, list: unknown[], what: string, family?: 4 | 6): string[] {
  const out: string[] = [];
  list.forEach((v, i) => {
    const ip = address(bad, `${field}[${i}]`, v, what, family);
    if (ip !== undefined && !out.includes(ip)) out.push(ip);
  });
  return out;
}

/**
 * Canonical "network/len", or undefined (reported) when `v` is not a CIDR. Host bits are cleared,
 * not refused: the API server accepts "10.0.0.1/8" (sloppy parsing) and means the network.
 */
function cidr(bad: Bad, field: string, v: unknown, what: string): string | undefined {
  const c = typeof v === "string" && v.includes("/") ? parseCidr(v, { leadingZeros: true }) : null;
  if (!c) {
    bad(field, v, `is not a CIDR (e.g. 10.244.0.0/24 or 2001:db8::/64); ${what}`);
    return undefined;
  }
  return formatCidr(c);
}

export function nodeFromApi(obj: Obj, report: ProblemSink = ignore): NodeInfo {
  const name = requireName(obj, "Node");
  const bad = reporter(obj, "Node", report);
  const all = arr(obj?.status?.addresses);
  const byType = (t: string) => {
    const out: string[] = [];
    all.forEach((a, i) => {
      if (a?.type !== t) return;
      const ip = address(bad, `status.addresses[${i}].address (${t})`, a?.address, "address ignored");
      if (ip !== undefined && !out.includes(ip)) out.push(ip);
    });
    return out;
  };
  const rawCidrs: unknown[] = arr(obj?.spec?.podCIDRs).length
    ? arr(obj.spec.podCIDRs)
    : (obj?.spec?.podCIDR ? [obj.spec.podCIDR] : []);
  const field = arr(obj?.spec?.podCIDRs).length ? "spec.podCIDRs" : "spec.podCIDR";
  const podCIDRs: string[] = [];
  rawCidrs.forEach((v, i) => {
    const c = cidr(bad, rawCidrs.length > 1 ? `${field}[${i}]` : field, v, "pod CIDR ignored");
    if (c !== undefined) podCIDRs.push(c);
  });
  return {
    name,
    labels: rec(obj.metadata.labels),
    annotations: rec(obj.metadata.annotations),
    podCIDRs,
    internalIPs: byType("InternalIP"),
    externalIPs: byType("ExternalIP"),
    providerID: str(obj?.spec?.providerID),
    creationTimestamp: created(obj),
  };
}

export function podFromApi(obj: Obj, report: ProblemSink = ignore): PodInfo {
  const name = requireName(obj, "Pod");
  const namespace = namespaceOf(obj, "Pod");
  const bad = reporter(obj, "Pod", report);
  const containerPorts: ContainerPort[] = [];
  for (const group of ["initContainers", "containers"]) {
    arr(obj?.spec?.[group]).forEach((c, ci) => {
      arr(c?.ports).forEach((p, pi) => {
        const field = `spec.${group}[${ci}].ports[${pi}]`;
        const proto = protocol(bad, `${field}.protocol`, p?.protocol, "that port is ignored");
        const port = portNumber(p?.containerPort);
        if (port === undefined) {
          bad(
            `${field}.containerPort`,
            p?.containerPort,
            "is not a port from 1 to 65535; that port is ignored",
          );
        }
        if (proto === undefined || port === undefined) return;
        containerPorts.push({ name: str(p?.name), containerPort: port, protocol: proto });
      });
    });
  }
  const rawIPs: unknown[] = arr(obj?.status?.podIPs).map((p) => p?.ip);
  if (rawIPs.length === 0 && obj?.status?.podIP) rawIPs.push(obj.status.podIP);
  const podIPs = addresses(
    bad,
    arr(obj?.status?.podIPs).length ? "status.podIPs[].ip" : "status.podIP",
    rawIPs,
    "the pod is not reachable at it",
  );
  const hostIP = obj?.status?.hostIP ? address(bad, "status.hostIP", obj.status.hostIP, "ignored") ?? "" : "";
  const grace = obj?.spec?.terminationGracePeriodSeconds;
  return {
    namespace,
    name,
    uid: str(obj.metadata.uid),
    labels: rec(obj.metadata.labels),
    annotations: rec(obj.metadata.annotations),
    nodeName: str(obj?.spec?.nodeName),
    hostIP,
    podIPs,
    hostNetwork: obj?.spec?.hostNetwork === true,
    phase: str(obj?.status?.phase) || "Pending",
    containerPorts,
    deletionTimestamp: timestamp(obj.metadata.deletionTimestamp),
    terminationGracePeriodSeconds: typeof grace === "number" && Number.isFinite(grace) && grace >= 0
      ? grace
      : 30,
    creationTimestamp: created(obj),
  };
}

export function namespaceFromApi(obj: Obj, _report: ProblemSink = ignore): NamespaceInfo {
  const name = requireName(obj, "Namespace");
  // The API server labels every namespace with its own name; manifests may not.
  return { name, labels: { "kubernetes.io/metadata.name": name, ...rec(obj.metadata.labels) } };
}

const SERVICE_TYPES = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] as const;

export function serviceFromApi(obj: Obj, report: ProblemSink = ignore): ServiceInfo {
  const name = requireName(obj, "Service");
  const namespace = namespaceOf(obj, "Service");
  const bad = reporter(obj, "Service", report);
  const spec = obj?.spec ?? {};
  const type = spec.type ?? "ClusterIP";
  if (!SERVICE_TYPES.includes(type)) {
    throw new ConfigError(
      `${ident(obj, "Service")}: spec.type ${show(type)} is not one of ${
        SERVICE_TYPES.join(", ")
      }; object skipped`,
    );
  }
  const ipsField = arr(spec.clusterIPs).length ? "spec.clusterIPs" : "spec.clusterIP";
  const rawIPs: unknown[] = arr(spec.clusterIPs).length
    ? arr(spec.clusterIPs)
    : (spec.clusterIP ? [spec.clusterIP] : []);
  const headless = rawIPs.includes("None");
  const clusterIPs = headless || type === "ExternalName"
    ? []
    : ipsField === "spec.clusterIP"
    ? (rawIPs.length ? [address(bad, ipsField, rawIPs[0], "the service is not served on it")] : [])
      .filter((x): x is string => !!x)
    : addresses(bad, ipsField, rawIPs.filter((v) => v !== ""), "the service is not served on it");
  const ports: ServicePort[] = [];
  arr(spec.ports).forEach((p, i) => {
    const field = `spec.ports[${i}]`;
    const port = portNumber(p?.port);
    if (port === undefined) {
      bad(`${field}.port`, p?.port, "is not a port from 1 to 65535; that port is not served");
      return;
    }
    const proto = protocol(bad, `${field}.protocol`, p?.protocol, "that port is not served");
    if (proto === undefined) return;
    const target = p?.targetPort;
    let targetPort: number | string;
    if (target === undefined || target === null || target === "" || target === 0) targetPort = port;
    else if (portNumber(target) !== undefined) targetPort = portNumber(target)!;
    else if (typeof target === "string" && PORT_NAME.test(target)) targetPort = target;
    else {
      bad(
        `${field}.targetPort`,
        target,
        "is neither a port from 1 to 65535 nor a port name; that port is not served",
      );
      return;
    }
    let nodePort = 0;
    if (p?.nodePort !== undefined && p?.nodePort !== null && p?.nodePort !== 0) {
      nodePort = portNumber(p.nodePort) ?? 0;
      if (!nodePort) {
        bad(`${field}.nodePort`, p.nodePort, "is not a port from 1 to 65535; no node port for it");
      }
    }
    ports.push({ name: str(p?.name), protocol: proto, port, targetPort, nodePort });
  });
  let healthCheckNodePort = 0;
  if (
    spec.healthCheckNodePort !== undefined && spec.healthCheckNodePort !== null &&
    spec.healthCheckNodePort !== 0
  ) {
    healthCheckNodePort = portNumber(spec.healthCheckNodePort) ?? 0;
    if (!healthCheckNodePort) {
      bad(
        "spec.healthCheckNodePort",
        spec.healthCheckNodePort,
        "is not a port from 1 to 65535; no health check port",
      );
    }
  }
  let sessionAffinityTimeout = 10800;
  const rawTimeout = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  if (rawTimeout !== undefined && rawTimeout !== null) {
    if (Number.isInteger(rawTimeout) && rawTimeout >= 1 && rawTimeout <= 86400) {
      sessionAffinityTimeout = rawTimeout;
    } else {
      bad(
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
        rawTimeout,
        "is not a number of seconds from 1 to 86400; the default 10800 is used",
      );
    }
  }
  const loadBalancerIPs: ServiceInfo["loadBalancerIPs"] = [];
  arr(obj?.status?.loadBalancer?.ingress).forEach((ing, i) => {
    let ip = "";
    if (ing?.ip) {
      const a = address(bad, `status.loadBalancer.ingress[${i}].ip`, ing.ip, "that ingress is ignored");
      if (a === undefined) return;
      ip = a;
    }
    loadBalancerIPs.push({ ip, hostname: str(ing?.hostname), ipMode: str(ing?.ipMode) || "VIP" });
  });
  const families = arr<string>(spec.ipFamilies).filter((f): f is IpFamily => f === "IPv4" || f === "IPv6");
  return {
    namespace,
    name,
    labels: rec(obj.metadata.labels),
    annotations: rec(obj.metadata.annotations),
    type,
    clusterIPs,
    headless,
    externalIPs: addresses(
      bad,
      "spec.externalIPs",
      arr(spec.externalIPs).filter((v) => v !== ""),
      "not served",
    ),
    loadBalancerIPs,
    loadBalancerClass: str(spec.loadBalancerClass),
    ports,
    sessionAffinity: spec.sessionAffinity === "ClientIP" ? "ClientIP" : "None",
    sessionAffinityTimeout,
    externalTrafficPolicy: spec.externalTrafficPolicy === "Local" ? "Local" : "Cluster",
    internalTrafficPolicy: spec.internalTrafficPolicy === "Local" ? "Local" : "Cluster",
    healthCheckNodePort,
    ipFamilies: families.length ? families : clusterIPs.map((ip) => (ip.includes(":") ? "IPv6" : "IPv4")),
    ipFamilyPolicy: str(spec.ipFamilyPolicy) || "SingleStack",
    creationTimestamp: created(obj),
  };
}

function endpointPorts(bad: Bad, field: string, list: unknown[]): EndpointPort[] {
  const out: EndpointPort[] = [];
  list.forEach((p: Obj, i) => {
    // A slice port without a number means "all ports" (headless services only): nothing to proxy.
    if (p?.port === undefined || p?.port === null) return;
    const port = portNumber(p.port);
    if (port === undefined) {
      bad(`${field}[${i}].port`, p.port, "is not a port from 1 to 65535; that port is not served");
      return;
    }
    const proto = protocol(bad, `${field}[${i}].protocol`, p?.protocol, "that port is not served");
    if (proto === undefined) return;
    out.push({ name: str(p?.name), port, protocol: proto });
  });
  return out;
}

export function endpointSliceFromApi(obj: Obj, report: ProblemSink = ignore): EndpointSliceInfo {
  const name = requireName(obj, "EndpointSlice");
  const namespace = namespaceOf(obj, "EndpointSlice");
  const bad = reporter(obj, "EndpointSlice", report);
  const addressType = obj?.addressType ?? "IPv4";
  if (!["IPv4", "IPv6", "FQDN"].includes(addressType)) {
    throw new ConfigError(
      `${ident(obj, "EndpointSlice")}: addressType ${
        show(addressType)
      } is not IPv4, IPv6 or FQDN; object skipped`,
    );
  }
  const family = addressType === "IPv4" ? 4 : addressType === "IPv6" ? 6 : undefined;
  const endpoints: EndpointSliceInfo["endpoints"] = [];
  arr(obj?.endpoints).forEach((e, i) => {
    // EndpointConditions: a nil `ready` means ready; `serving` defaults to `ready`.
    const ready = e?.conditions?.ready !== false;
    const target = e?.targetRef;
    const addrs = family
      ? addresses(
        bad,
        `endpoints[${i}].addresses`,
        arr(e?.addresses),
        "that endpoint address is not used",
        family,
      )
      : arr<string>(e?.addresses).map(String);
    if (addrs.length === 0) return;
    endpoints.push({
      addresses: addrs,
      ready,
      serving: e?.conditions?.serving ?? ready,
      terminating: e?.conditions?.terminating === true,
      nodeName: str(e?.nodeName),
      targetPod: target?.kind === "Pod" ? `${str(target.namespace) || namespace}/${str(target.name)}` : "",
    });
  });
  return {
    namespace,
    name,
    serviceName: str(obj.metadata.labels?.["kubernetes.io/service-name"]),
    addressType,
    endpoints,
    ports: endpointPorts(bad, "ports", arr(obj?.ports)),
  };
}

/** Builds EndpointSlice-equivalents from a legacy Endpoints object (fallback for old clusters). */
export function endpointsFromApi(obj: Obj, report: ProblemSink = ignore): EndpointSliceInfo[] {
  const name = requireName(obj, "Endpoints");
  const ns = namespaceOf(obj, "Endpoints");
  const bad = reporter(obj, "Endpoints", report);
  return arr(obj?.subsets).flatMap((subset, i) => {
    const ports = endpointPorts(bad, `subsets[${i}].ports`, arr(subset?.ports));
    const mk = (a: Obj, ready: boolean, field: string) => {
      const ip = address(bad, `${field}.ip`, a?.ip, "that endpoint address is not used");
      return ip === undefined ? [] : [{
        addresses: [ip],
        ready,
        serving: ready,
        terminating: false,
        nodeName: str(a?.nodeName),
        targetPod: a?.targetRef?.kind === "Pod"
          ? `${str(a.targetRef.namespace) || ns}/${str(a.targetRef.name)}`
          : "",
      }];
    };
    const endpoints = [
      ...arr(subset?.addresses).flatMap((a, j) => mk(a, true, `subsets[${i}].addresses[${j}]`)),
      ...arr(subset?.notReadyAddresses).flatMap((a, j) =>
        mk(a, false, `subsets[${i}].notReadyAddresses[${j}]`)
      ),
    ];
    return (["IPv4", "IPv6"] as const).map((family) => ({
      namespace: ns,
      name: `${name}-legacy-${i}-${family.toLowerCase()}`,
      serviceName: name,
      addressType: family,
      endpoints: endpoints.filter((e) => e.addresses[0].includes(":") === (family === "IPv6")),
      ports,
    })).filter((s) => s.endpoints.length > 0);
  });
}

/** A label selector, or undefined (reported) when an expression's operator or values are invalid. */
function selector(bad: Bad, field: string, v: Obj, what: string): LabelSelector | undefined {
  if (v !== undefined && v !== null && (typeof v !== "object" || Array.isArray(v))) {
    bad(field, v, `is not a label selector; ${what}`);
    return undefined;
  }
  const matchExpressions: LabelSelector["matchExpressions"] = [];
  for (const [i, e] of arr(v?.matchExpressions).entries()) {
    const op = e?.operator;
    if (!["In", "NotIn", "Exists", "DoesNotExist"].includes(op)) {
      bad(
        `${field}.matchExpressions[${i}].operator`,
        op,
        `is not In, NotIn, Exists or DoesNotExist; ${what}`,
      );
      return undefined;
    }
    if ((op === "In" || op === "NotIn") && arr(e?.values).length === 0) {
      bad(`${field}.matchExpressions[${i}].values`, e?.values ?? [], `must not be empty for ${op}; ${what}`);
      return undefined;
    }
    matchExpressions.push({ key: str(e?.key), operator: op, values: arr(e?.values).map(String) });
  }
  return { matchLabels: rec(v?.matchLabels), matchExpressions };
}

function policyPorts(bad: Bad, field: string, ports: unknown[]): NetworkPolicyPort[] {
  const out: NetworkPolicyPort[] = [];
  ports.forEach((p: Obj, i) => {
    const what = "that port allows nothing";
    const proto = protocol(bad, `${field}[${i}].protocol`, p?.protocol, what);
    if (proto === undefined) return;
    const entry: NetworkPolicyPort = { protocol: proto };
    if (p?.port !== undefined && p?.port !== null) {
      const n = portNumber(p.port);
      if (n !== undefined) entry.port = n;
      else if (typeof p.port === "string" && PORT_NAME.test(p.port)) entry.port = p.port;
      else {
        bad(`${field}[${i}].port`, p.port, `is neither a port from 1 to 65535 nor a port name; ${what}`);
        return;
      }
    }
    if (p?.endPort !== undefined && p?.endPort !== null) {
      const end = portNumber(p.endPort);
      if (typeof entry.port !== "number" || end === undefined || end < entry.port) {
        bad(
          `${field}[${i}].endPort`,
          p.endPort,
          `must be a port from the numeric port (${show(p?.port)}) to 65535; ${what}`,
        );
        return;
      }
      entry.endPort = end;
    }
    out.push(entry);
  });
  return out;
}

function policyPeers(bad: Bad, field: string, peers: unknown[]): NetworkPolicyPeer[] {
  const out: NetworkPolicyPeer[] = [];
  peers.forEach((p: Obj, i) => {
    const f = `${field}[${i}]`;
    const what = "that peer allows nothing";
    const peer: NetworkPolicyPeer = {};
    if (p?.ipBlock) {
      if (p.podSelector || p.namespaceSelector) {
        bad(f, Object.keys(p), `sets ipBlock with a selector; ${what}`);
        return;
      }
      const c = cidr(bad, `${f}.ipBlock.cidr`, p.ipBlock.cidr, what);
      if (c === undefined) return;
      const except: string[] = [];
      for (const [j, x] of arr(p.ipBlock.except).entries()) {
        const e = cidr(bad, `${f}.ipBlock.except[${j}]`, x, what);
        if (e === undefined) return;
        except.push(e);
      }
      out.push({ ipBlock: { cidr: c, except } });
      return;
    }
    if (p?.podSelector) {
      const s = selector(bad, `${f}.podSelector`, p.podSelector, what);
      if (!s) return;
      peer.podSelector = s;
    }
    if (p?.namespaceSelector) {
      const s = selector(bad, `${f}.namespaceSelector`, p.namespaceSelector, what);
      if (!s) return;
      peer.namespaceSelector = s;
    }
    if (!peer.podSelector && !peer.namespaceSelector) {
      bad(f, p ?? {}, `has no podSelector, namespaceSelector or ipBlock; ${what}`);
      return;
    }
    out.push(peer);
  });
  return out;
}

/**
 * NetworkPolicy, with policyTypes implied as the API server does: Ingress always, plus Egress
 * when egress rules are present. Never throws for content (only for a missing name): whatever
 * cannot be read allows nothing, so the pods the policy selects stay isolated.
 */
export function networkPolicyFromApi(obj: Obj, report: ProblemSink = ignore): NetworkPolicyInfo {
  const name = requireName(obj, "NetworkPolicy");
  const namespace = namespaceOf(obj, "NetworkPolicy");
  const bad = reporter(obj, "NetworkPolicy", report);
  const spec = obj?.spec ?? {};
  const rules = (kind: "ingress" | "egress"): NetworkPolicyRule[] => {
    const out: NetworkPolicyRule[] = [];
    arr(spec[kind]).forEach((r, i) => {
      const peerField = kind === "ingress" ? "from" : "to";
      const rawPeers = arr(kind === "ingress" ? r?.from : r?.to);
      const rawPorts = arr(r?.ports);
      const peers = policyPeers(bad, `spec.${kind}[${i}].${peerField}`, rawPeers);
      const ports = policyPorts(bad, `spec.${kind}[${i}].ports`, rawPorts);
      // An empty list means "any": a rule whose every peer (or port) was unreadable must allow nothing.
      if ((rawPeers.length > 0 && peers.length === 0) || (rawPorts.length > 0 && ports.length === 0)) {
        report(
          `${ident(obj, "NetworkPolicy")}: spec.${kind}[${i}] has no usable ${
            peers.length === 0 && rawPeers.length > 0 ? peerField : "ports"
          } left; the rule is dropped (it allows nothing, the selected pods stay isolated)`,
        );
        return;
      }
      out.push({ peers, ports });
    });
    return out;
  };
  const ingress = rules("ingress");
  const egress = rules("egress");
  const rawTypes = arr(spec.policyTypes);
  let policyTypes = rawTypes.filter((t): t is "Ingress" | "Egress" => t === "Ingress" || t === "Egress");
  rawTypes.forEach((t, i) => {
    if (t !== "Ingress" && t !== "Egress") {
      bad(`spec.policyTypes[${i}]`, t, "is not Ingress or Egress; ignored");
    }
  });
  if (policyTypes.length === 0) {
    policyTypes = egress.length || arr(spec.egress).length ? ["Ingress", "Egress"] : ["Ingress"];
  }
  let podSelector = selector(bad, "spec.podSelector", spec.podSelector ?? {}, "");
  if (!podSelector) {
    // Which pods were meant is unknown: isolate every pod of the namespace, allow nothing.
    report(
      `${ident(obj, "NetworkPolicy")}: spec.podSelector cannot be read; the policy isolates every pod of ` +
        `namespace ${namespace} (${policyTypes.join(", ")}) and allows nothing until it is fixed`,
    );
    podSelector = { matchLabels: {}, matchExpressions: [] };
    return { namespace, name, podSelector, policyTypes, ingress: [], egress: [] };
  }
  return { namespace, name, podSelector, policyTypes, ingress, egress };
}

/** Maps an API `kind` to the snapshot kind it feeds, or undefined for kinds we ignore. */
export function resourceKindOf(kind: string): ResourceKind | "Endpoints" | undefined {
  switch (kind) {
    case "Node":
    case "Pod":
    case "Namespace":
    case "Service":
    case "EndpointSlice":
    case "NetworkPolicy":
    case "Endpoints":
      return kind;
    default:
      return undefined;
  }
}

/**
 * Converts Kubernetes API objects in their wire form (plain JSON as the API serves them, as
 * YAML manifests hold them) into the normalised snapshot types. `@kubernetes/client-node` model
 * instances do NOT share the wire names (`from` is `_from`): `api.ts` turns them back with
 * `wire.ts` first. Defaults the API server would fill in are filled here,
 * so manifests written by hand behave like objects read from a cluster.
 *
 * Objects that cannot be understood throw a `ConfigError` naming the object and field; the
 * sources log it and skip that object only.
 *
 * @module
 */
import { ConfigError } from "../cmd/errors.ts";
import type {
  ContainerPort,
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
} from "./types.ts";

// deno-lint-ignore no-explicit-any
type Obj = any;

const str = (v: unknown): string => (typeof v === "string" ? v : "");
const rec = (v: unknown): Record<string, string> =>
  v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)])) : {};
const arr = <T = Obj>(v: unknown): T[] => (Array.isArray(v) ? v as T[] : []);

function ident(obj: Obj): string {
  const ns = str(obj?.metadata?.namespace);
  return `${obj?.kind ?? "object"} ${ns ? `${ns}/` : ""}${str(obj?.metadata?.name) || "<unnamed>"}`;
}

function protocol(obj: Obj, field: string, v: unknown): Protocol {
  if (v === undefined || v === null || v === "") return "TCP";
  if (v === "TCP" || v === "UDP" || v === "SCTP") return v;
  throw new ConfigError(
    `${ident(obj)}: ${field} ${JSON.stringify(v)} is not a protocol: accepted are TCP, UDP, SCTP`,
  );
}

function requireName(obj: Obj): string {
  const name = str(obj?.metadata?.name);
  if (!name) throw new ConfigError(`${ident(obj)}: metadata.name is missing`);
  return name;
}

function timestamp(v: unknown): string | null {
  if (v instanceof Date) return v.toISOString();
  return typeof v === "string" && v !== "" ? v : null;
}

export function nodeFromApi(obj: Obj): NodeInfo {
  const addresses = arr(obj?.status?.addresses);
  const byType = (t: string) =>
    addresses.filter((a) => a?.type === t).map((a) => str(a.address)).filter(Boolean);
  const podCIDRs = arr<string>(obj?.spec?.podCIDRs).length
    ? arr<string>(obj.spec.podCIDRs)
    : (obj?.spec?.podCIDR ? [str(obj.spec.podCIDR)] : []);
  return {
    name: requireName(obj),
    labels: rec(obj.metadata.labels),
    annotations: rec(obj.metadata.annotations),
    podCIDRs,
    internalIPs: byType("InternalIP"),
    externalIPs: byType("ExternalIP"),
    providerID: str(obj?.spec?.providerID),
  };
}

export function podFromApi(obj: Obj): PodInfo {
  const name = requireName(obj);
  const containerPorts: ContainerPort[] = [];
  for (const c of [...arr(obj?.spec?.initContainers), ...arr(obj?.spec?.containers)]) {
    for (const p of arr(c?.ports)) {
      containerPorts.push({
        name: str(p?.name),
        containerPort: Number(p?.containerPort),
        protocol: protocol(obj, "spec.containers[].ports[].protocol", p?.protocol),
      });
    }
  }
  const podIPs = arr(obj?.status?.podIPs).map((p) => str(p?.ip)).filter(Boolean);
  if (podIPs.length === 0 && obj?.status?.podIP) podIPs.push(str(obj.status.podIP));
  return {
    namespace: str(obj.metadata.namespace) || "default",
    name,
    uid: str(obj.metadata.uid),
    labels: rec(obj.metadata.labels),
    annotations: rec(obj.metadata.annotations),
    nodeName: str(obj?.spec?.nodeName),
    hostIP: str(obj?.status?.hostIP),
    podIPs,
    hostNetwork: obj?.spec?.hostNetwork === true,
    phase: str(obj?.status?.phase) || "Pending",
    containerPorts,
    deletionTimestamp: timestamp(obj.metadata.deletionTimestamp),
    terminationGracePeriodSeconds: typeof obj?.spec?.terminationGracePeriodSeconds === "number"
      ? obj.spec.terminationGracePeriodSeconds
      : 30,
  };
}

export function namespaceFromApi(obj: Obj): NamespaceInfo {
  const name = requireName(obj);
  // The API server labels every namespace with its own name; manifests may not.
  return { name, labels: { "kubernetes.io/metadata.name": name, ...rec(obj.metadata.labels) } };
}

const SERVICE_TYPES = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] as const;

export function serviceFromApi(obj: Obj): ServiceInfo {
  const name = requireName(obj);
  const spec = obj?.spec ?? {};
  const type = spec.type ?? "ClusterIP";
  if (!SERVICE_TYPES.includes(type)) {
    throw new ConfigError(
      `${ident(obj)}: spec.type ${JSON.stringify(type)} is not one of ${SERVICE_TYPES.join(", ")}`,
    );
  }
  const rawIPs = arr<string>(spec.clusterIPs).length
    ? arr<string>(spec.clusterIPs)
    : (spec.clusterIP ? [spec.clusterIP] : []);
  const headless = rawIPs.includes("None");
  const clusterIPs = headless ? [] : rawIPs.filter(Boolean);
  const ports = arr(spec.ports).map((p, i) => {
    const port = Number(p?.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new ConfigError(
        `${ident(obj)}: spec.ports[${i}].port ${JSON.stringify(p?.port)} is not a port from 1 to 65535`,
      );
    }
    const target = p?.targetPort;
    return {
      name: str(p?.name),
      protocol: protocol(obj, `spec.ports[${i}].protocol`, p?.protocol),
      port,
      targetPort: target === undefined || target === null || target === ""
        ? port
        : (typeof target === "number" || /^\d+$/.test(String(target)) ? Number(target) : String(target)),
      nodePort: Number(p?.nodePort) || 0,
    };
  });
  const families = arr<string>(spec.ipFamilies).filter((f): f is IpFamily => f === "IPv4" || f === "IPv6");
  return {
    namespace: str(obj.metadata.namespace) || "default",
    name,
    labels: rec(obj.metadata.labels),
    annotations: rec(obj.metadata.annotations),
    type,
    clusterIPs,
    headless,
    externalIPs: arr<string>(spec.externalIPs).filter(Boolean),
    loadBalancerIPs: arr(obj?.status?.loadBalancer?.ingress).map((i) => ({
      ip: str(i?.ip),
      hostname: str(i?.hostname),
      ipMode: str(i?.ipMode) || "VIP",
    })),
    loadBalancerClass: str(spec.loadBalancerClass),
    ports,
    sessionAffinity: spec.sessionAffinity === "ClientIP" ? "ClientIP" : "None",
    sessionAffinityTimeout: Number(spec.sessionAffinityConfig?.clientIP?.timeoutSeconds) || 10800,
    externalTrafficPolicy: spec.externalTrafficPolicy === "Local" ? "Local" : "Cluster",
    internalTrafficPolicy: spec.internalTrafficPolicy === "Local" ? "Local" : "Cluster",
    healthCheckNodePort: Number(spec.healthCheckNodePort) || 0,
    ipFamilies: families.length ? families : clusterIPs.map((ip) => (ip.includes(":") ? "IPv6" : "IPv4")),
    ipFamilyPolicy: str(spec.ipFamilyPolicy) || "SingleStack",
  };
}

export function endpointSliceFromApi(obj: Obj): EndpointSliceInfo {
  const name = requireName(obj);
  const addressType = obj?.addressType ?? "IPv4";
  if (!["IPv4", "IPv6", "FQDN"].includes(addressType)) {
    throw new ConfigError(
      `${ident(obj)}: addressType ${JSON.stringify(addressType)} is not IPv4, IPv6 or FQDN`,
    );
  }
  return {
    namespace: str(obj.metadata.namespace) || "default",
    name,
    serviceName: str(obj.metadata.labels?.["kubernetes.io/service-name"]),
    addressType,
    endpoints: arr(obj?.endpoints).map((e) => {
      // EndpointConditions: a nil `ready` means ready; `serving` defaults to `ready`.
      const ready = e?.conditions?.ready !== false;
      const target = e?.targetRef;
      return {
        addresses: arr<string>(e?.addresses),
        ready,
        serving: e?.conditions?.serving ?? ready,
        terminating: e?.conditions?.terminating === true,
        nodeName: str(e?.nodeName),
        targetPod: target?.kind === "Pod"
          ? `${str(target.namespace) || str(obj.metadata.namespace)}/${str(target.name)}`
          : "",
      };
    }),
    ports: arr(obj?.ports).map((p, i) => ({
      name: str(p?.name),
      port: Number(p?.port),
      protocol: protocol(obj, `ports[${i}].protocol`, p?.protocol),
    })),
  };
}

/** Builds EndpointSlice-equivalents from a legacy Endpoints object (fallback for old clusters). */
export function endpointsFromApi(obj: Obj): EndpointSliceInfo[] {
  const ns = str(obj?.metadata?.namespace) || "default";
  const name = requireName(obj);
  return arr(obj?.subsets).flatMap((subset, i) => {
    const ports = arr(subset?.ports).map((p, j) => ({
      name: str(p?.name),
      port: Number(p?.port),
      protocol: protocol(obj, `subsets[${i}].ports[${j}].protocol`, p?.protocol),
    }));
    const mk = (a: Obj, ready: boolean) => ({
      addresses: [str(a?.ip)],
      ready,
      serving: ready,
      terminating: false,
      nodeName: str(a?.nodeName),
      targetPod: a?.targetRef?.kind === "Pod"
        ? `${str(a.targetRef.namespace) || ns}/${str(a.targetRef.name)}`
        : "",
    });
    const endpoints = [
      ...arr(subset?.addresses).map((a) => mk(a, true)),
      ...arr(subset?.notReadyAddresses).map((a) => mk(a, false)),
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

function selector(obj: Obj, field: string, v: Obj): LabelSelector {
  const matchExpressions = arr(v?.matchExpressions).map((e, i) => {
    const op = e?.operator;
    if (!["In", "NotIn", "Exists", "DoesNotExist"].includes(op)) {
      throw new ConfigError(
        `${ident(obj)}: ${field}.matchExpressions[${i}].operator ${
          JSON.stringify(op)
        } is not In, NotIn, Exists or DoesNotExist`,
      );
    }
    return { key: str(e?.key), operator: op, values: arr<string>(e?.values).map(String) };
  });
  return { matchLabels: rec(v?.matchLabels), matchExpressions };
}

function policyPorts(obj: Obj, field: string, ports: unknown): NetworkPolicyPort[] {
  return arr(ports).map((p, i) => {
    const out: NetworkPolicyPort = { protocol: protocol(obj, `${field}[${i}].protocol`, p?.protocol) };
    if (p?.port !== undefined && p?.port !== null) {
      out.port = typeof p.port === "number" || /^\d+$/.test(String(p.port)) ? Number(p.port) : String(p.port);
    }
    if (p?.endPort !== undefined && p?.endPort !== null) out.endPort = Number(p.endPort);
    return out;
  });
}

function policyPeers(obj: Obj, field: string, peers: unknown): NetworkPolicyPeer[] {
  return arr(peers).map((p, i) => {
    const out: NetworkPolicyPeer = {};
    if (p?.podSelector) out.podSelector = selector(obj, `${field}[${i}].podSelector`, p.podSelector);
    if (p?.namespaceSelector) {
      out.namespaceSelector = selector(obj, `${field}[${i}].namespaceSelector`, p.namespaceSelector);
    }
    if (p?.ipBlock) {
      out.ipBlock = { cidr: str(p.ipBlock.cidr), except: arr<string>(p.ipBlock.except).map(String) };
    }
    return out;
  });
}

/**
 * NetworkPolicy, with policyTypes implied as the API server does: Ingress always, plus
 * Egress when egress rules are present. Peer contents (CIDRs, named ports) are NOT validated
 * here: a bad peer must only disable that peer, which is the firewall plan's business.
 */
export function networkPolicyFromApi(obj: Obj): NetworkPolicyInfo {
  const name = requireName(obj);
  const spec = obj?.spec ?? {};
  const rules = (kind: "ingress" | "egress"): NetworkPolicyRule[] =>
    arr(spec[kind]).map((r, i) => ({
      peers: policyPeers(
        obj,
        `spec.${kind}[${i}].${kind === "ingress" ? "from" : "to"}`,
        // `_from`: a client-node model that skipped wire.ts must not read as "from anywhere".
        kind === "ingress" ? (r?.from ?? r?._from) : r?.to,
      ),
      ports: policyPorts(obj, `spec.${kind}[${i}].ports`, r?.ports),
    }));
  const ingress = rules("ingress");
  const egress = rules("egress");
  let policyTypes = arr<string>(spec.policyTypes).filter((t): t is "Ingress" | "Egress" =>
    t === "Ingress" || t === "Egress"
  );
  if (policyTypes.length === 0) policyTypes = egress.length ? ["Ingress", "Egress"] : ["Ingress"];
  return {
    namespace: str(obj.metadata.namespace) || "default",
    name,
    podSelector: selector(obj, "spec.podSelector", spec.podSelector ?? {}),
    policyTypes,
    ingress,
    egress,
  };
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

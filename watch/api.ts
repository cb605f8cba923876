/**
 * The real source: list+watch of Nodes, Pods, Namespaces, Services, EndpointSlices (Endpoints
 * on clusters without discovery.k8s.io/v1) and NetworkPolicies through
 * `@kubernetes/client-node` informers.
 *
 * client-node's ListWatch relists by itself on 410 Gone, but any other failure (API server
 * restart, network drop, auth error) stops it after an `error` callback. We restart it with
 * capped exponential back-off; when it comes back it relists if its resourceVersion is gone, and
 * a relist delivers deletes for objects that vanished meanwhile, so nothing is missed.
 *
 * @module
 */
import * as k8s from "@kubernetes/client-node";
import { ConfigError } from "../cmd/errors.ts";
import {
  endpointsFromApi,
  endpointSliceFromApi,
  namespaceFromApi,
  networkPolicyFromApi,
  nodeFromApi,
  podFromApi,
  type ProblemSink,
  serviceFromApi,
} from "./convert.ts";
import { type SnapshotSource, SnapshotStore } from "./store.ts";
import { objectKey, type ResourceKind } from "./types.ts";
import { toWire } from "./wire.ts";

// deno-lint-ignore no-explicit-any
type Obj = any;

export interface ApiSourceOptions {
  kubeconfig?: string;
  master?: string;
  /** Logs problems (conversion failures, watch errors). */
  log?: (level: "info" | "warning" | "error", message: string) => void;
  /** Also receives every conversion problem (one line per object change); for counters and tests. */
  onProblem?: (message: string) => void;
  /** Back-off bounds for restarting a failed watch, ms. */
  backoff?: { initialMs: number; maxMs: number };
}

/** Loads client configuration the way upstream does: --master over --kubeconfig over in-cluster. */
export function loadKubeConfig(opts: { kubeconfig?: string; master?: string }): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  try {
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else if (Deno.env.get("KUBERNETES_SERVICE_HOST")) kc.loadFromCluster();
    else if (opts.master) {
      kc.loadFromClusterAndUser({ name: "master", server: opts.master, skipTLSVerify: false }, {
        name: "anonymous",
      });
    } else {
      throw new Error(
        "no --kubeconfig, no --master and not running in a cluster (KUBERNETES_SERVICE_HOST unset)",
      );
    }
  } catch (e) {
    throw new ConfigError(`cannot load Kubernetes client configuration: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (opts.master) {
    const cluster = kc.getCurrentCluster();
    if (cluster) {
      kc.clusters = kc.clusters.map((c) => c.name === cluster.name ? { ...c, server: opts.master! } : c);
    }
  }
  return kc;
}

interface Feed {
  kind: ResourceKind;
  path: string;
  list: () => Promise<k8s.KubernetesListObject<Obj>>;
  /** The API kind of the objects (list items come without `kind`). */
  apiKind: string;
  /** Converts one object into (key, value) pairs; Endpoints expand to several pseudo-slices. */
  convert: (obj: Obj, report: ProblemSink) => Array<[string, unknown]>;
}

/** True when the API serves discovery.k8s.io/v1 EndpointSlices. */
async function hasEndpointSlices(kc: k8s.KubeConfig): Promise<boolean> {
  try {
    const res = await kc.makeApiClient(k8s.ApisApi).getAPIVersions();
    return res.groups.some((g) =>
      g.name === "discovery.k8s.io" && g.versions.some((v) => v.version === "v1")
    );
  } catch {
    return true; // Cannot tell yet (API down): every supported Kubernetes version has them.
  }
}

export async function apiSource(opts: ApiSourceOptions): Promise<SnapshotSource> {
  const log = opts.log ?? (() => {});
  const kc = loadKubeConfig(opts);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  const networking = kc.makeApiClient(k8s.NetworkingV1Api);
  const single =
    <T>(fn: (o: Obj, r: ProblemSink) => T & { name: string; namespace?: string }) =>
    (obj: Obj, report: ProblemSink) => {
      const v = fn(obj, report);
      return [[objectKey(v.namespace ?? "", v.name), v]] as Array<[string, unknown]>;
    };
  const slices = await hasEndpointSlices(kc);
  const feeds: Feed[] = [
    {
      kind: "Node",
      apiKind: "Node",
      path: "/api/v1/nodes",
      list: () => core.listNode(),
      convert: single(nodeFromApi),
    },
    {
      kind: "Namespace",
      apiKind: "Namespace",
      path: "/api/v1/namespaces",
      list: () => core.listNamespace(),
      convert: single(namespaceFromApi),
    },
    {
      kind: "Pod",
      apiKind: "Pod",
      path: "/api/v1/pods",
      list: () => core.listPodForAllNamespaces(),
      convert: single(podFromApi),
    },
    {
      kind: "Service",
      apiKind: "Service",
      path: "/api/v1/services",
      list: () => core.listServiceForAllNamespaces(),
      convert: single(serviceFromApi),
    },
    slices
      ? {
        kind: "EndpointSlice",
        apiKind: "EndpointSlice",
        path: "/apis/discovery.k8s.io/v1/endpointslices",
        list: () => discovery.listEndpointSliceForAllNamespaces(),
        convert: single(endpointSliceFromApi),
      }
      : {
        kind: "EndpointSlice",
        apiKind: "Endpoints",
        path: "/api/v1/endpoints",
        list: () => core.listEndpointsForAllNamespaces(),
        convert: (obj, report) =>
          endpointsFromApi(obj, report).map((s) => [objectKey(s.namespace, s.name), s]),
      },
    {
      kind: "NetworkPolicy",
      apiKind: "NetworkPolicy",
      path: "/apis/networking.k8s.io/v1/networkpolicies",
      list: () => networking.listNetworkPolicyForAllNamespaces(),
      convert: single(networkPolicyFromApi),
    },
  ];

  const informers: k8s.Informer<Obj>[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let closed = false;
  const store = new SnapshotStore(async () => {
    closed = true;
    for (const t of timers) clearTimeout(t);
    await Promise.all(informers.map((i) => i.stop().catch(() => {})));
  });
  const listed = new Set<ResourceKind>();
  const { initialMs, maxMs } = opts.backoff ?? { initialMs: 500, maxMs: 30_000 };

  for (const feed of feeds) {
    // Keys each API object produced last time, so a delete (or an Endpoints object that lost a family) removes them all.
    const produced = new Map<string, string[]>();
    // Problems each API object had last time: an update that does not change them logs nothing.
    const known = new Map<string, string[]>();
    const apiKey = (obj: Obj) => objectKey(obj?.metadata?.namespace ?? "", obj?.metadata?.name ?? "");
    const onUpsert = (model: Obj) => {
      // Lists arrive as client-node models (`_from`, Dates), watch events as raw JSON: one shape.
      const wire = toWire(model);
      const obj = wire?.kind ? wire : { ...wire, kind: feed.apiKind };
      let pairs: Array<[string, unknown]>;
      const problems: string[] = [];
      const report: ProblemSink = (m) => problems.push(m);
      try {
        pairs = feed.convert(obj, report);
      } catch (e) {
        report(
          e instanceof ConfigError
            ? e.message
            : `skipping ${feed.apiKind} ${apiKey(obj)}: ${(e as Error).message}`,
        );
        pairs = [];
      }
      // Logged once per object change: only problems this object did not have before.
      const had = known.get(apiKey(obj)) ?? [];
      for (const m of problems) {
        if (had.includes(m)) continue;
        opts.onProblem?.(m);
        log("warning", m);
      }
      if (problems.length) known.set(apiKey(obj), problems);
      else known.delete(apiKey(obj));
      const before = produced.get(apiKey(obj)) ?? [];
      const now = pairs.map(([k]) => k);
      for (const k of before) if (!now.includes(k)) store.remove(feed.kind, k);
      for (const [k, v] of pairs) store.upsert(feed.kind, k, v);
      produced.set(apiKey(obj), now);
    };
    const onDelete = (obj: Obj) => {
      for (const k of produced.get(apiKey(obj)) ?? []) store.remove(feed.kind, k);
      produced.delete(apiKey(obj));
      known.delete(apiKey(obj));
    };
    let delay = initialMs;
    const informer = k8s.makeInformer(kc, feed.path, async () => {
      const list = await feed.list();
      if (!listed.has(feed.kind)) {
        listed.add(feed.kind);
        // Objects of the first list arrive as "add" callbacks right after this returns.
        queueMicrotask(() => {
          if (listed.size === feeds.length) store.markSynced();
        });
      }
      delay = initialMs;
      return list;
    });
    informer.on("add", onUpsert);
    informer.on("update", onUpsert);
    informer.on("delete", onDelete);
    informer.on("error", (err: unknown) => {
      if (closed) return;
      const msg = err instanceof Error ? err.message : JSON.stringify(err);
      log("warning", `watch of ${feed.path} failed (${msg}); retrying in ${delay} ms`);
      const t = setTimeout(() => {
        timers.delete(t);
        if (!closed) informer.start().catch(() => {});
      }, delay);
      timers.add(t);
      delay = Math.min(delay * 2, maxMs);
    });
    informers.push(informer);
  }
  await Promise.all(informers.map((i) => i.start().catch(() => {})));
  return store;
}

/**
 * The real source: list+watch of Nodes, Pods, Namespaces, Services, EndpointSlices (Endpoints
 * on clusters without discovery.k8s.io/v1) and NetworkPolicies, through the agent's own small
 * REST client (`kube/`), which hands over the API server's JSON as it is on the wire. Each
 * collection has a reflector (`kube/reflector.ts`): relist after 410 Gone, capped exponential
 * back-off on any other failure, deletes for whatever vanished while the watch was down. Only
 * the converted objects are kept, never the API objects themselves.
 *
 * @module
 */
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
import { ConfigError } from "../errors/mod.ts";
import { KubeClient } from "./kube/client.ts";
import { resolveEndpoint } from "./kube/config.ts";
import { apiKey, reflect } from "./kube/reflector.ts";
import { type SnapshotSource, SnapshotStore } from "./store.ts";
import { objectKey, type ResourceKind } from "./types.ts";

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

interface Feed {
  kind: ResourceKind;
  path: string;
  /** The API kind of the objects (list items come without `kind`). */
  apiKind: string;
  /** Converts one object into (key, value) pairs; Endpoints expand to several pseudo-slices. */
  convert: (obj: Obj, report: ProblemSink) => Array<[string, unknown]>;
}

/** True when the API serves discovery.k8s.io/v1 EndpointSlices. */
async function hasEndpointSlices(client: KubeClient): Promise<boolean> {
  try {
    return (await client.get("/apis/discovery.k8s.io/v1")) !== undefined;
  } catch {
    return true; // Cannot tell yet (API down): every supported Kubernetes version has them.
  }
}

export async function apiSource(opts: ApiSourceOptions): Promise<SnapshotSource> {
  const log = opts.log ?? (() => {});
  const client = new KubeClient(await resolveEndpoint(opts));
  const single =
    <T>(fn: (o: Obj, r: ProblemSink) => T & { name: string; namespace?: string }) =>
    (obj: Obj, report: ProblemSink) => {
      const v = fn(obj, report);
      return [[objectKey(v.namespace ?? "", v.name), v]] as Array<[string, unknown]>;
    };
  // Asked beside the other lists, not before them: only the EndpointSlice feed waits for it.
  const slicesServed = hasEndpointSlices(client);
  const feeds: Feed[] = [
    { kind: "Node", apiKind: "Node", path: "/api/v1/nodes", convert: single(nodeFromApi) },
    {
      kind: "Namespace",
      apiKind: "Namespace",
      path: "/api/v1/namespaces",
      convert: single(namespaceFromApi),
    },
    { kind: "Pod", apiKind: "Pod", path: "/api/v1/pods", convert: single(podFromApi) },
    { kind: "Service", apiKind: "Service", path: "/api/v1/services", convert: single(serviceFromApi) },
    {
      kind: "NetworkPolicy",
      apiKind: "NetworkPolicy",
      path: "/apis/networking.k8s.io/v1/networkpolicies",
      convert: single(networkPolicyFromApi),
    },
  ];
  const endpointFeed = (slices: boolean): Feed =>
    slices
      ? {
        kind: "EndpointSlice",
        apiKind: "EndpointSlice",
        path: "/apis/discovery.k8s.io/v1/endpointslices",
        convert: single(endpointSliceFromApi),
      }
      : {
        kind: "EndpointSlice",
        apiKind: "Endpoints",
        path: "/api/v1/endpoints",
        convert: (obj, report) =>
          endpointsFromApi(obj, report).map((s) => [objectKey(s.namespace, s.name), s]),
      };
  const feedCount = feeds.length + 1;

  const abort = new AbortController();
  const loops: Promise<void>[] = [];
  const store = new SnapshotStore(async () => {
    abort.abort();
    await Promise.all(loops);
    client.close();
  });
  const listed = new Set<ResourceKind>();

  const start = (feed: Feed) => {
    // Keys each API object produced last time, so a delete (or an Endpoints object that lost a family) removes them all.
    const produced = new Map<string, string[]>();
    // Problems each API object had last time: an update that does not change them logs nothing.
    const known = new Map<string, string[]>();
    const upsert = (item: Obj) => {
      const obj = item?.kind ? item : { ...item, kind: feed.apiKind };
      const key = apiKey(obj);
      let pairs: Array<[string, unknown]>;
      const problems: string[] = [];
      const report: ProblemSink = (m) => problems.push(m);
      try {
        pairs = feed.convert(obj, report);
      } catch (e) {
        report(
          e instanceof ConfigError ? e.message : `skipping ${feed.apiKind} ${key}: ${(e as Error).message}`,
        );
        pairs = [];
      }
      // Logged once per object change: only problems this object did not have before.
      const had = known.get(key) ?? [];
      for (const m of problems) {
        if (had.includes(m)) continue;
        opts.onProblem?.(m);
        log("warning", m);
      }
      if (problems.length) known.set(key, problems);
      else known.delete(key);
      const before = produced.get(key) ?? [];
      const now = pairs.map(([k]) => k);
      for (const k of before) if (!now.includes(k)) store.remove(feed.kind, k);
      for (const [k, v] of pairs) store.upsert(feed.kind, k, v);
      produced.set(key, now);
    };
    const remove = (key: string) => {
      for (const k of produced.get(key) ?? []) store.remove(feed.kind, k);
      produced.delete(key);
      known.delete(key);
    };
    const listedOnce = () => {
      if (listed.has(feed.kind)) return;
      listed.add(feed.kind);
      if (listed.size === feedCount) store.markSynced();
    };
    loops.push(reflect(
      client,
      feed.path,
      {
        upsert,
        remove,
        listed: listedOnce,
        failed: (msg, retryMs) =>
          log("warning", `watch of ${feed.path} failed (${msg}); retrying in ${retryMs} ms`),
      },
      abort.signal,
      { backoff: opts.backoff },
    ));
  };
  for (const feed of feeds) start(feed);
  start(endpointFeed(await slicesServed));
  return store;
}

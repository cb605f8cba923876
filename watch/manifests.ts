/**
 * The embedded source: cluster objects read from YAML/JSON manifests (`--manifests FILE|DIR`),
 * re-read when the files change. Multi-document files and `kind: List` are understood. An
 * object that cannot be converted is logged with its name and skipped; a file that does not
 * parse keeps its previous objects, so a half-saved edit never empties the cluster.
 *
 * @module
 */
import { parseAllDocuments } from "yaml";
import { ConfigError } from "../cmd/errors.ts";
import {
  endpointsFromApi,
  endpointSliceFromApi,
  namespaceFromApi,
  networkPolicyFromApi,
  nodeFromApi,
  podFromApi,
  serviceFromApi,
} from "./convert.ts";
import { ALL_KINDS, type SnapshotSource, SnapshotStore } from "./store.ts";
import { objectKey, type ResourceKind } from "./types.ts";

// deno-lint-ignore no-explicit-any
type Obj = any;

export interface ManifestOptions {
  /** Called for each object or file that was skipped. */
  onProblem?: (message: string) => void;
  /** Re-read on change (default true). */
  watch?: boolean;
  /** Debounce for file events, ms. */
  debounceMs?: number;
}

/** Lists the manifest files under a path, sorted so the result does not depend on readdir order. */
async function manifestFiles(path: string): Promise<string[]> {
  const st = await Deno.stat(path);
  if (st.isFile) return [path];
  const out: string[] = [];
  for await (const e of Deno.readDir(path)) {
    const p = `${path.replace(/\/$/, "")}/${e.name}`;
    if (e.isDirectory) out.push(...await manifestFiles(p));
    else if (/\.(ya?ml|json)$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

/** Parses one file into API objects, flattening `kind: List`. Throws on YAML errors. */
export function parseManifestText(text: string, file: string): Obj[] {
  const docs = parseAllDocuments(text);
  const objects: Obj[] = [];
  for (const doc of docs) {
    if (doc.errors.length) {
      throw new ConfigError(`${file}: ${doc.errors[0].message.split("\n")[0]}`);
    }
    const value = doc.toJS();
    if (value === null || value === undefined) continue;
    if (value.kind === "List" || (typeof value.kind === "string" && value.kind.endsWith("List"))) {
      objects.push(...(Array.isArray(value.items) ? value.items : []));
    } else objects.push(value);
  }
  return objects;
}

/** Converts API objects into per-kind maps, reporting and skipping the ones that do not convert. */
export function objectsToMaps(
  objects: Obj[],
  onProblem: (m: string) => void,
): Map<ResourceKind, Map<string, unknown>> {
  const maps = new Map<ResourceKind, Map<string, unknown>>(ALL_KINDS.map((k) => [k, new Map()]));
  const put = (kind: ResourceKind, ns: string, name: string, v: unknown) =>
    maps.get(kind)!.set(objectKey(ns, name), v);
  for (const obj of objects) {
    try {
      switch (obj?.kind) {
        case "Node": {
          const n = nodeFromApi(obj);
          put("Node", "", n.name, n);
          break;
        }
        case "Namespace": {
          const n = namespaceFromApi(obj);
          put("Namespace", "", n.name, n);
          break;
        }
        case "Pod": {
          const p = podFromApi(obj);
          put("Pod", p.namespace, p.name, p);
          break;
        }
        case "Service": {
          const s = serviceFromApi(obj);
          put("Service", s.namespace, s.name, s);
          break;
        }
        case "EndpointSlice": {
          const s = endpointSliceFromApi(obj);
          put("EndpointSlice", s.namespace, s.name, s);
          break;
        }
        case "Endpoints":
          for (const s of endpointsFromApi(obj)) put("EndpointSlice", s.namespace, s.name, s);
          break;
        case "NetworkPolicy": {
          const p = networkPolicyFromApi(obj);
          put("NetworkPolicy", p.namespace, p.name, p);
          break;
        }
        default:
          break; // Deployments, ConfigMaps, ...: not ours to read.
      }
    } catch (e) {
      onProblem(e instanceof ConfigError ? e.message : `skipping object: ${(e as Error).message}`);
    }
  }
  // Namespaces referenced by objects but not declared exist implicitly, as "default" does in a cluster.
  const nsMap = maps.get("Namespace")!;
  for (const kind of ["Pod", "Service", "EndpointSlice", "NetworkPolicy"] as const) {
    for (const v of maps.get(kind)!.values()) {
      const ns = (v as { namespace: string }).namespace;
      if (!nsMap.has(ns)) nsMap.set(ns, { name: ns, labels: { "kubernetes.io/metadata.name": ns } });
    }
  }
  return maps;
}

/** Starts the manifest source. Rejects with a `ConfigError` when the path does not exist. */
export async function manifestSource(path: string, opts: ManifestOptions = {}): Promise<SnapshotSource> {
  const onProblem = opts.onProblem ?? (() => {});
  try {
    await Deno.stat(path);
  } catch (e) {
    throw new ConfigError(`--manifests ${JSON.stringify(path)}: ${(e as Error).message}`, { cause: e });
  }
  const lastGood = new Map<string, Obj[]>();
  let watcher: Deno.FsWatcher | undefined;
  const store = new SnapshotStore(() => {
    watcher?.close();
    return Promise.resolve();
  });

  const load = async () => {
    const files = await manifestFiles(path);
    for (const f of [...lastGood.keys()]) if (!files.includes(f)) lastGood.delete(f);
    for (const f of files) {
      try {
        lastGood.set(f, parseManifestText(await Deno.readTextFile(f), f));
      } catch (e) {
        onProblem(
          `${
            e instanceof ConfigError ? e.message : `${f}: ${(e as Error).message}`
          } (keeping its previous objects)`,
        );
      }
    }
    const maps = objectsToMaps([...lastGood.values()].flat(), onProblem);
    for (const [kind, map] of maps) store.replaceAll(kind, map);
  };

  await load();
  store.markSynced();
  store.flush();

  if (opts.watch ?? true) {
    watcher = Deno.watchFs(path, { recursive: true });
    (async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        for await (const _ of watcher!) {
          clearTimeout(timer);
          timer = setTimeout(
            () => load().catch((e) => onProblem(`re-reading ${path}: ${e.message}`)),
            opts.debounceMs ?? 100,
          );
        }
      } catch {
        // The watcher was closed.
      }
      clearTimeout(timer);
    })();
  }
  return store;
}

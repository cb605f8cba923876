/**
 * The embedded source: cluster objects read from YAML/JSON manifests (`--manifests FILE|DIR`),
 * re-read when the files change. Files are streams of YAML or JSON documents separated by `---`
 * lines; `kind: List` (and any `*List`) is flattened. One bad document or object is logged with
 * its file and document number and skipped alone; on a re-read a document that stops parsing
 * keeps its previous objects, so a half-saved edit never empties the cluster. Only regular files
 * are read (a FIFO named `*.yaml` would block forever).
 *
 * @module
 */
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../errors/mod.ts";
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
async function manifestFiles(path: string, refused: string[]): Promise<string[]> {
  const st = await Deno.stat(path);
  if (st.isFile) return [path];
  if (!st.isDirectory) {
    throw new ConfigError(`--manifests ${JSON.stringify(path)}: not a regular file or a directory; refused`);
  }
  const out: string[] = [];
  for await (const e of Deno.readDir(path)) {
    const p = `${path.replace(/\/$/, "")}/${e.name}`;
    if (e.isDirectory) {
      out.push(...await manifestFiles(p, refused));
      continue;
    }
    if (!/\.(ya?ml|json)$/.test(e.name)) continue;
    // A FIFO, socket or device would block the read (or never end): only regular files are read.
    let regular = e.isFile;
    if (e.isSymlink) {
      try {
        regular = (await Deno.stat(p)).isFile;
      } catch {
        regular = false;
      }
    }
    if (regular) out.push(p);
    else refused.push(p);
  }
  return out.sort();
}

/** One object read from a manifests file, with where it came from ("FILE: document N"). */
export interface ManifestItem {
  obj: Obj;
  where: string;
  /** 1-based number of the document in its file. */
  doc?: number;
}

/** What one file holds: its objects, and one line per document that could not be read. */
export interface ManifestParse {
  items: ManifestItem[];
  problems: string[];
  /** Number of non-empty documents. */
  documents: number;
  /** Numbers of the documents that did not parse. */
  failed: number[];
}

/**
 * Splits a JSON text holding several top-level values one after the other (`{...}{...}` or one
 * per line, as `kubectl get -o json` loops write), or returns undefined when it is not that.
 */
function splitJsonValues(text: string): string[] | undefined {
  const out: string[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{" || c === "[") {
      if (depth++ === 0) start = i;
    } else if (c === "}" || c === "]") {
      if (--depth === 0) out.push(text.slice(start, i + 1));
      if (depth < 0) return undefined;
    } else if (depth === 0 && !/\s/.test(c)) return undefined;
  }
  return depth === 0 && out.length > 1 ? out : undefined;
}

/** Parses one document: JSON (fast path, also several concatenated values) or YAML. */
function parseDocument(part: string): unknown[] {
  const t = part.trim();
  if (t.startsWith("{") || t.startsWith("[")) {
    try {
      return [JSON.parse(t)];
    } catch (jsonError) {
      const values = splitJsonValues(t);
      if (values) return values.map((v) => JSON.parse(v));
      // JSON with comments or trailing YAML is still YAML; report JSON's message when YAML fails too.
      try {
        return [parseYaml(part)];
      } catch {
        throw jsonError;
      }
    }
  }
  return [parseYaml(part)];
}

/**
 * Parses one file into API objects, flattening `kind: List` (and `*List`). The text is a stream
 * of documents separated by `---` lines, each YAML or JSON (JSON documents separated by `---`
 * are what many generators write); a JSON document may also hold several concatenated values.
 * A document that does not parse is reported (file and number) and skipped; the others are kept.
 *
 * Documents are parsed one at a time: `yaml`'s whole-stream parser keeps every document's syntax
 * tree at once; on a 12 MB cluster it took 7.6 s and 1.2 GB, against 0.2 s this way.
 */
export function parseManifestDocuments(text: string, file: string): ManifestParse {
  const items: ManifestItem[] = [];
  const problems: string[] = [];
  const failed: number[] = [];
  let documents = 0;
  const parts = text.split(/^---[ \t]*(?:#.*)?$/m);
  parts.forEach((part, i) => {
    if (part.trim() === "" || /^(\s*(#.*)?\n?)*$/.test(part)) return;
    documents++;
    const where = parts.length > 1 ? `${file}: document ${i + 1}` : file;
    let values: unknown[];
    try {
      values = parseDocument(part);
    } catch (e) {
      problems.push(`${where}: ${(e as Error).message.split("\n")[0]}; document skipped`);
      failed.push(i + 1);
      return;
    }
    for (const value of values as Obj[]) {
      if (value === null || value === undefined) continue;
      if (typeof value !== "object") {
        problems.push(`${where}: is ${JSON.stringify(value).slice(0, 40)}, not an object; document skipped`);
        continue;
      }
      const list = Array.isArray(value)
        ? value
        : (typeof value.kind === "string" && value.kind.endsWith("List"))
        ? (Array.isArray(value.items) ? value.items : undefined)
        : [value];
      if (!list) {
        problems.push(`${where}: kind ${value.kind} has no items list; document skipped`);
        continue;
      }
      const isList = list !== (value as unknown) && !(list.length === 1 && list[0] === value);
      list.forEach((obj: Obj, j: number) => {
        const w = isList ? `${where}: items[${j}]` : where;
        if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
          problems.push(`${w}: not an object; skipped`);
        } else items.push({ obj, where: w, doc: i + 1 });
      });
    }
  });
  return { items, problems, documents, failed };
}

/**
 * Parses one file into API objects. Throws a `ConfigError` naming the file and document when a
 * document does not parse (`annotate --validate` wants all or nothing); the agent's source uses
 * `parseManifestDocuments`, which skips only the bad document.
 */
export function parseManifestText(text: string, file: string): Obj[] {
  const r = parseManifestDocuments(text, file);
  if (r.problems.length) throw new ConfigError(r.problems);
  return r.items.map((i) => i.obj);
}

const OUR_KINDS = ["Node", "Pod", "Namespace", "Service", "EndpointSlice", "Endpoints", "NetworkPolicy"];

/** Edit distance, for short strings. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length];
}

/** The kind we read that `kind` is a near miss of ("service", "Servce", "NetworkPolicys"), if any. */
function nearKind(kind: string): string | undefined {
  // Short kinds only at distance 1: "Role" is 2 from "Node" and is a real kind.
  return OUR_KINDS.find((k) =>
    k.toLowerCase() === kind.toLowerCase() || distance(k, kind) <= (k.length >= 9 ? 2 : 1)
  );
}

/** Converts one object into its snapshot kind and key; throws (ConfigError) for an unusable object. */
function convertOne(obj: Obj, report: (m: string) => void): Array<[ResourceKind, string, unknown]> {
  switch (obj?.kind) {
    case "Node": {
      const n = nodeFromApi(obj, report);
      return [["Node", n.name, n]];
    }
    case "Namespace": {
      const n = namespaceFromApi(obj, report);
      return [["Namespace", n.name, n]];
    }
    case "Pod": {
      const p = podFromApi(obj, report);
      return [["Pod", objectKey(p.namespace, p.name), p]];
    }
    case "Service": {
      const s = serviceFromApi(obj, report);
      return [["Service", objectKey(s.namespace, s.name), s]];
    }
    case "EndpointSlice": {
      const s = endpointSliceFromApi(obj, report);
      return [["EndpointSlice", objectKey(s.namespace, s.name), s]];
    }
    case "Endpoints":
      return endpointsFromApi(obj, report).map((s) => ["EndpointSlice", objectKey(s.namespace, s.name), s]);
    case "NetworkPolicy": {
      const p = networkPolicyFromApi(obj, report);
      return [["NetworkPolicy", objectKey(p.namespace, p.name), p]];
    }
    default:
      if (typeof obj?.kind !== "string" || obj.kind === "") {
        throw new ConfigError("object has no kind; skipped");
      }
      // Deployments, ConfigMaps, ...: not ours to read. A near-miss of a kind we read is a typo
      // that would silently drop the object: say so.
      {
        const near = nearKind(obj.kind);
        if (near) {
          throw new ConfigError(
            `kind ${JSON.stringify(obj.kind)} is not one we read (did you mean ${near}?); skipped`,
          );
        }
      }
      return [];
  }
}

/** Per-kind maps, plus how many objects each source ("FILE") contributed and lost. */
export interface ConvertedManifests {
  maps: Map<ResourceKind, Map<string, unknown>>;
  /** Objects of each file that converted (ignored kinds count: they are valid). */
  good: Map<string, number>;
  /** Objects of each file that were skipped whole. */
  skipped: Map<string, number>;
}

/** Converts manifest items, reporting field problems and skipped objects with their file and document. */
export function convertManifestItems(
  items: ManifestItem[],
  onProblem: (m: string) => void,
  fileOf: (item: ManifestItem) => string = (i) => i.where.split(": ")[0],
): ConvertedManifests {
  const maps = new Map<ResourceKind, Map<string, unknown>>(ALL_KINDS.map((k) => [k, new Map()]));
  const good = new Map<string, number>();
  const skipped = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  // Which item produced each key: a second object with the same kind and name is a conflict.
  const owner = new Map<string, string>();
  for (const item of items) {
    const report = (m: string) => onProblem(`${item.where}: ${m}`);
    try {
      for (const [kind, key, v] of convertOne(item.obj, report)) {
        const id = `${kind} ${key}`;
        const first = owner.get(id);
        if (first !== undefined) {
          onProblem(`${item.where}: ${id} is also defined at ${first}; the later definition wins`);
        }
        owner.set(id, item.where);
        maps.get(kind)!.set(key, v);
      }
      bump(good, fileOf(item));
    } catch (e) {
      onProblem(
        `${item.where}: ${e instanceof ConfigError ? e.message : `skipping object: ${(e as Error).message}`}`,
      );
      bump(skipped, fileOf(item));
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
  return { maps, good, skipped };
}

/** Converts API objects into per-kind maps, reporting and skipping the ones that do not convert. */
export function objectsToMaps(
  objects: Obj[],
  onProblem: (m: string) => void,
): Map<ResourceKind, Map<string, unknown>> {
  const items = objects.map((obj) => ({ obj, where: "" }));
  return convertManifestItems(items, (m) => onProblem(m.replace(/^: /, ""))).maps;
}

/**
 * Starts the manifest source. Rejects with a `ConfigError` when the path does not exist, or when
 * at start-up a file yields no valid object (empty, every document bad, unreadable, or not a
 * regular file): running on an empty cluster would silently serve nothing. Later re-reads only
 * report: a document that stops parsing (a half-saved edit) keeps the objects it had.
 */
export async function manifestSource(path: string, opts: ManifestOptions = {}): Promise<SnapshotSource> {
  const report = opts.onProblem ?? (() => {});
  // Problems of the last read: a re-read reports only new ones, so each is logged once per change.
  let reported = new Set<string>();
  let current = new Set<string>();
  const onProblem = (m: string) => {
    current.add(m);
    if (!reported.has(m)) report(m);
  };
  try {
    await Deno.stat(path);
  } catch (e) {
    throw new ConfigError(`--manifests ${JSON.stringify(path)}: ${(e as Error).message}`, { cause: e });
  }
  /** Items of each file by document number, as last read. */
  const lastGood = new Map<string, Map<number, ManifestItem[]>>();
  let watcher: Deno.FsWatcher | undefined;
  const store = new SnapshotStore(() => {
    watcher?.close();
    return Promise.resolve();
  });

  const load = async (startup: boolean) => {
    current = new Set();
    const refused: string[] = [];
    const files = await manifestFiles(path, refused);
    const fatal: string[] = [];
    const problem = (m: string) => startup ? fatal.push(m) : onProblem(m);
    for (const f of refused) problem(`${f}: not a regular file (FIFO, socket or device); refused, not read`);
    for (const f of [...lastGood.keys()]) if (!files.includes(f)) lastGood.delete(f);
    const emptyFiles = new Set<string>();
    for (const f of files) {
      let text: string;
      try {
        text = await Deno.readTextFile(f);
      } catch (e) {
        const keep = lastGood.has(f) ? " (keeping its previous objects)" : "";
        problem(`${f}: cannot be read: ${(e as Error).message}${keep}`);
        continue;
      }
      const parsed = parseManifestDocuments(text, f);
      const previous = lastGood.get(f);
      const byDoc = new Map<number, ManifestItem[]>();
      for (const item of parsed.items) {
        let l = byDoc.get(item.doc ?? 0);
        if (!l) byDoc.set(item.doc ?? 0, l = []);
        l.push(item);
      }
      for (const m of parsed.problems) onProblem(m);
      for (const d of parsed.failed) {
        const kept = previous?.get(d);
        if (kept) {
          byDoc.set(d, kept);
          onProblem(`${f}: document ${d}: keeping its previous objects`);
        }
      }
      if (parsed.documents === 0) emptyFiles.add(f);
      lastGood.set(f, byDoc);
    }
    const items = [...lastGood.values()].flatMap((byDoc) => [...byDoc.values()].flat());
    const converted = convertManifestItems(items, onProblem);
    if (startup) {
      for (const f of files) {
        if ((converted.good.get(f) ?? 0) > 0 || fatal.some((m) => m.startsWith(`${f}:`))) continue;
        fatal.push(
          emptyFiles.has(f)
            ? `${f}: holds no object`
            : `${f}: no valid object (every document or object in it was skipped, see the warnings above)`,
        );
      }
      if (fatal.length) {
        throw new ConfigError(
          fatal.map((m) => `--manifests: ${m}`).concat(
            "--manifests: refusing to start on a cluster missing these files' objects; fix or remove them",
          ),
        );
      }
      if (files.length === 0) onProblem(`--manifests ${JSON.stringify(path)}: no .yaml, .yml or .json file`);
    }
    for (const [kind, map] of converted.maps) store.replaceAll(kind, map);
    reported = current;
  };

  await load(true);
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
            () => load(false).catch((e) => report(`re-reading ${path}: ${e.message}`)),
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

/**
 * The floors of the tree and the one rule between them: an import never goes up a floor.
 * `floors_test.ts` reads every non-test module's imports and holds the tree to this table, so
 * moving shared vocabulary back up (or a controller reaching into another's folder) fails there.
 *
 * 0. ground: `net/` (addresses, prefixes, families), `errors/` (the one `ConfigError`),
 *    `options/` (the flag table, `AgentOptions`, Go value text). Imports nothing above it.
 * 1. libraries: `kernel/`, `bgp/`, `watch/`, `observe/`. Each imports only itself and the ground,
 *    never a sibling (so `bgp/` stays a library with no Kubernetes and no agent in it). The rest
 *    of the tree uses `bgp/` only through `bgp/mod.ts`.
 * 2. controllers: `controllers/<name>/` imports its own folder, the shared files named in
 *    `SHARED_CONTROLLER_FILES`, and the floors below; never another controller's folder.
 * 3. composers: `controllers/registry.ts` (builds every controller) and `controllers/trace/`
 *    (reads the proxy's, firewall's and router's plans together); they may import any controller.
 * 4. commands: `cmd/` and `main.ts`.
 *
 * Tests, fixtures and benchmarks (`*_test.ts`, `tests/`, `bench/`) stand outside the building.
 *
 * @module
 */

/** The shared files of `controllers/` that every controller may import. */
export const SHARED_CONTROLLER_FILES: readonly string[] = [
  "controllers/controller.ts",
  "controllers/runner.ts",
  "controllers/forward_order.ts",
  "controllers/refused.ts",
];

/** Where a module stands: its floor and the unit it belongs to (a folder, or a composer file). */
export interface Place {
  floor: 0 | 1 | 2 | 3 | 4;
  /** "net", "bgp", "controllers/proxy", "controllers (shared)", "cmd", … */
  unit: string;
}

/** The npm package that is Kubernetes; the ground floor, `bgp/` and `kernel/` never import it. */
export const KUBERNETES_CLIENT = "@kubernetes/client-node";

/** The BGP library's public surface: the only `bgp/` module the rest of the tree imports. */
export const BGP_SURFACE = "bgp/mod.ts";

const GROUND = ["net", "errors", "options"];
const LIBRARIES = ["kernel", "bgp", "watch", "observe"];

/** The place of a repository-relative module path; undefined when it is outside the building. */
export function placeOf(path: string): Place | undefined {
  if (path.endsWith("_test.ts") || path.startsWith("tests/") || path.startsWith("bench/")) return undefined;
  if (path.startsWith("tools/") || path.startsWith("dist/")) return undefined;
  const parts = path.split("/");
  const top = parts[0];
  if (GROUND.includes(top)) return { floor: 0, unit: top };
  if (LIBRARIES.includes(top)) return { floor: 1, unit: top };
  if (top === "controllers") {
    if (path === "controllers/registry.ts" || parts[1] === "trace") {
      return { floor: 3, unit: "controllers (composer)" };
    }
    if (parts.length === 2) return { floor: 2, unit: "controllers (shared)" };
    return { floor: 2, unit: `controllers/${parts[1]}` };
  }
  if (top === "cmd" || path === "main.ts") return { floor: 4, unit: "cmd" };
  return undefined;
}

/** One import edge: repository-relative importer and target (or a bare specifier, as written). */
export interface Edge {
  from: string;
  to: string;
}

/** Why an edge breaks the floors; undefined when it does not. */
export function violation(e: Edge): string | undefined {
  const from = placeOf(e.from);
  if (!from) return undefined;
  if (!e.to.includes("/") || /^(npm:|node:|jsr:|https?:|@)/.test(e.to)) {
    const noKube = from.floor === 0 || from.unit === "bgp" || from.unit === "kernel";
    return e.to === KUBERNETES_CLIENT && noKube
      ? `${e.from} imports ${KUBERNETES_CLIENT}, but ${from.unit}/ has no Kubernetes in it`
      : undefined;
  }
  const to = placeOf(e.to);
  if (!to) return `${e.from} imports ${e.to}, which is outside the building (a test, fixture or benchmark)`;
  if (to.floor > from.floor) {
    return `${e.from} (floor ${from.floor}, ${from.unit}) imports ${e.to} (floor ${to.floor}, ${to.unit}): up a floor`;
  }
  if (to.unit === "bgp" && from.unit !== "bgp" && e.to !== BGP_SURFACE) {
    return `${e.from} imports ${e.to}: the BGP library is used only through ${BGP_SURFACE}`;
  }
  if (from.floor === 1 && to.floor === 1 && from.unit !== to.unit) {
    return `${e.from} (${from.unit}/) imports ${e.to} (${to.unit}/): libraries do not import each other`;
  }
  if (from.floor === 2 && to.floor === 2 && from.unit !== to.unit) {
    const shared = from.unit === "controllers (shared)" ? false : SHARED_CONTROLLER_FILES.includes(e.to);
    if (!shared) {
      return `${e.from} (${from.unit}) imports ${e.to} (${to.unit}): a controller imports only its own folder ` +
        `and ${SHARED_CONTROLLER_FILES.join(", ")}`;
    }
  }
  return undefined;
}

/**
 * Blanks comments (keeping strings and line breaks), so an import in a doc comment is not read
 * as one. Template literals are kept whole; a comment marker inside any string is left alone.
 */
export function stripComments(src: string): string {
  let out = "";
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === "/" && src[i + 1] === "/") {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? src.length : end + 2;
      out += src.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === "\\" ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The specifiers a module imports: static imports, re-exports, side-effect and dynamic imports. */
export function importSpecifiers(src: string): string[] {
  const code = stripComments(src);
  const out: string[] = [];
  const patterns = [
    /(?:^|[;}\s])(?:import|export)\s+(?:type\s+)?[\w*{}\s,$]*?\s*from\s*["']([^"']+)["']/g,
    /(?:^|[;}\s])import\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]);
  return out;
}

/** Resolves a specifier written in `from` against it; bare and URL specifiers stay as written. */
export function resolveSpecifier(from: string, spec: string): string {
  if (!spec.startsWith("./") && !spec.startsWith("../")) return spec;
  const parts = from.split("/").slice(0, -1);
  for (const p of spec.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== ".") parts.push(p);
  }
  return parts.join("/");
}

/**
 * Kernel routes owned by kube-router: rendered as `ip -batch` lines, parsed from
 * `ip -j route show`, and diffed so one sync is one `ip -batch` of `route replace` / `route del`.
 *
 * Ownership is the routing protocol number: upstream kube-router installs its routes with
 * `proto 0x11` (17), and we keep 17 so an upgrade from upstream (or a mixed cluster) recognises
 * the same routes. Routes of any other protocol are never touched.
 *
 * @module
 */

/** The route protocol number that marks our routes (upstream's 0x11). */
export const ROUTE_PROTO = 17;

/** Policy-routing table upstream uses for overlay traffic. */
export const OVERLAY_TABLE = 77;

/** One route as we want it (or as the kernel reports one of ours). */
export interface Route {
  /** Destination prefix in canonical form, e.g. "10.244.1.0/24", "2001:db8::/64". */
  dst: string;
  /** Gateway; absent for device routes. */
  via?: string;
  dev?: string;
  /** Preferred source address. */
  src?: string;
  /** Routing table; absent or 254 means main. */
  table?: number;
  /** `onlink`: the gateway is reachable on `dev` without a covering prefix (tunnels, vxlan). */
  onlink?: boolean;
  /** Multipath next hops (ECMP); when set, `via`/`dev` are absent. */
  nexthops?: Array<{ via: string; dev?: string; onlink?: boolean }>;
}

/** Whether a route reported by the kernel is one of ours. Pure. */
export function isOurs(route: { protocol?: string | number }): boolean {
  return Number(route.protocol) === ROUTE_PROTO;
}

function familyOf(dst: string): 4 | 6 {
  return dst.includes(":") ? 6 : 4;
}

/** Identity of a route in the kernel: (family, table, dst). */
export function routeKey(r: Route): string {
  return `${familyOf(r.dst)}|${r.table ?? 254}|${r.dst}`;
}

/** Canonical text of everything about a route other than its key, for change detection. */
function routeBody(r: Route): string {
  const hops = r.nexthops
    ? [...r.nexthops].map((h) => `${h.via}@${h.dev ?? ""}${h.onlink ? "!" : ""}`).sort().join(",")
    : "";
  return [r.via ?? "", r.dev ?? "", r.src ?? "", r.onlink ? "onlink" : "", hops].join("|");
}

/** Whether two routes would program the same kernel entry. */
export function sameRoute(a: Route, b: Route): boolean {
  return routeKey(a) === routeKey(b) && routeBody(a) === routeBody(b);
}

function tablePart(r: Route): string {
  return r.table !== undefined && r.table !== 254 ? ` table ${r.table}` : "";
}

/** `route replace ...` as an `ip -batch` line (no leading `ip`). */
export function renderRouteReplace(r: Route): string {
  let s = `route replace ${r.dst}`;
  if (r.nexthops && r.nexthops.length > 0) {
    s += ` proto ${ROUTE_PROTO}${tablePart(r)}`;
    if (r.src) s += ` src ${r.src}`;
    for (const h of r.nexthops) {
      s += ` nexthop via ${h.via}${h.dev ? ` dev ${h.dev}` : ""}${h.onlink ? " onlink" : ""}`;
    }
    return s;
  }
  if (r.via) s += ` via ${r.via}`;
  if (r.dev) s += ` dev ${r.dev}`;
  if (r.src) s += ` src ${r.src}`;
  s += ` proto ${ROUTE_PROTO}${tablePart(r)}`;
  if (r.onlink) s += " onlink";
  return s;
}

/** `route del ...` for one of our routes, restricted to our protocol so a foreign route is never hit. */
export function renderRouteDel(r: Route): string {
  return `route del ${r.dst} proto ${ROUTE_PROTO}${tablePart(r)}`;
}

interface JsonRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  prefsrc?: string;
  table?: string;
  protocol?: string | number;
  flags?: string[];
  type?: string;
  nexthops?: Array<{ gateway?: string; dev?: string; flags?: string[] }>;
}

const NAMED_TABLES: Record<string, number> = { main: 254, local: 255, default: 253 };

function canonicalDst(dst: string, family: 4 | 6): string {
  if (dst === "default") return family === 6 ? "::/0" : "0.0.0.0/0";
  if (dst.includes("/")) return dst;
  return `${dst}/${family === 6 ? 128 : 32}`;
}

/**
 * Parses `ip [-4|-6] -j route show table all [proto N]` output into routes. With a `proto` filter
 * iproute2 omits the protocol field, so `assumeProtocol` says what the filter was.
 */
export function parseRoutes(
  json: string,
  family: 4 | 6,
  assumeProtocol?: number,
): Array<Route & { protocol: string | number }> {
  const text = json.trim();
  if (text === "") return [];
  const rows = JSON.parse(text) as JsonRoute[];
  const out: Array<Route & { protocol: string | number }> = [];
  for (const row of rows) {
    if (row.type && row.type !== "unicast") continue;
    const table = row.table === undefined ? 254 : NAMED_TABLES[row.table] ?? Number(row.table);
    if (table === 255) continue;
    const r: Route & { protocol: string | number } = {
      dst: canonicalDst(row.dst, family),
      protocol: row.protocol ?? assumeProtocol ?? "unspec",
    };
    if (table !== 254) r.table = table;
    if (row.prefsrc) r.src = row.prefsrc;
    if (row.nexthops && row.nexthops.length > 0) {
      r.nexthops = row.nexthops.map((h) => ({
        via: h.gateway ?? "",
        ...(h.dev ? { dev: h.dev } : {}),
        ...(h.flags?.includes("onlink") ? { onlink: true } : {}),
      }));
    } else {
      if (row.gateway) r.via = row.gateway;
      if (row.dev) r.dev = row.dev;
      if (row.flags?.includes("onlink")) r.onlink = true;
    }
    out.push(r);
  }
  return out;
}

/** `ip` argv (for `Runner.run`) that lists our routes of one family in every table. */
export function listOurRoutesArgv(family: 4 | 6): string[] {
  return ["ip", `-${family}`, "-j", "route", "show", "table", "all", "proto", String(ROUTE_PROTO)];
}

/** The result of diffing desired routes against ours in the kernel. */
export interface RouteDiff {
  replace: Route[];
  remove: Route[];
}

/**
 * What to change so the kernel's routes of our protocol equal `desired`. `kernel` must contain
 * only our routes (`listOurRoutesArgv` filters by protocol). A device route the kernel reports
 * without `dev` because the device vanished is replaced too (the key matches, the body differs).
 */
export function diffRoutes(desired: readonly Route[], kernel: readonly Route[]): RouteDiff {
  const have = new Map(kernel.map((r) => [routeKey(r), r]));
  const want = new Map(desired.map((r) => [routeKey(r), r]));
  const replace: Route[] = [];
  const remove: Route[] = [];
  for (const [k, r] of want) {
    const cur = have.get(k);
    if (!cur || !sameRoute(cur, r)) replace.push(r);
  }
  for (const [k, r] of have) if (!want.has(k)) remove.push(r);
  return { replace: sortByKey(replace), remove: sortByKey(remove) };
}

/** Sorted by `routeKey`, keys computed once (code-point order: cheap and deterministic at 1M routes). */
function sortByKey(routes: Route[]): Route[] {
  const keyed = routes.map((r) => ({ k: routeKey(r), r }));
  keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return keyed.map((x) => x.r);
}

/** The `ip -batch` lines for a diff: deletions first so a moved prefix never has two entries. */
export function renderRouteDiff(d: RouteDiff): string[] {
  return [...d.remove.map(renderRouteDel), ...d.replace.map(renderRouteReplace)];
}

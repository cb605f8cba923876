/**
 * The operator's view of the speaker over HTTP/JSON (upstream exposes GoBGP's gRPC on
 * `--gobgp-admin-address:--gobgp-admin-port`; we serve JSON there instead):
 *
 * - `GET /peers` → `PeerStatus[]`
 * - `GET /routes?table=loc|in|out[&peer=ADDR]` → `[{ prefix, nextHop, source, asPath, origin,
 *   communities, localPref, med, stale }]` (`in`/`out` need `peer`)
 *
 * @module
 */
import { formatPrefix, type PeerStatus, type Route } from "../../bgp/mod.ts";

/** What the admin API reads; a `BgpSpeaker` satisfies it. */
export interface SpeakerView {
  peers(): PeerStatus[];
  locRib(): Route[];
  adjRibIn(address: string): Route[];
  adjRibOut(address: string): Route[];
}

export interface RouteJson {
  prefix: string;
  nextHop: string;
  source: string;
  asPath: number[];
  origin?: number;
  communities?: number[];
  localPref?: number;
  med?: number;
  stale: boolean;
}

export function routeJson(r: Route): RouteJson {
  const a = r.attrs;
  const out: RouteJson = {
    prefix: formatPrefix(r.prefix),
    nextHop: r.nextHop,
    source: r.source,
    asPath: (a.asPath ?? []).flatMap((s) => s.asns),
    stale: r.stale,
  };
  if (a.origin !== undefined) out.origin = a.origin;
  if (a.communities?.length) out.communities = a.communities;
  if (a.localPref !== undefined) out.localPref = a.localPref;
  if (a.med !== undefined) out.med = a.med;
  return out;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body, null, 1) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** The request handler (pure over the view; `null` view = speaker not running yet). */
export function adminHandler(view: () => SpeakerView | null): (req: Request) => Response {
  return (req) => {
    const url = new URL(req.url);
    if (req.method !== "GET") return json({ error: "only GET is served" }, 405);
    const s = view();
    if (url.pathname === "/peers") return json(s ? s.peers() : []);
    if (url.pathname === "/routes") {
      const table = url.searchParams.get("table") ?? "loc";
      const peer = url.searchParams.get("peer") ?? "";
      if (!["loc", "in", "out"].includes(table)) {
        return json({ error: `table ${JSON.stringify(table)} is not one of loc, in, out` }, 400);
      }
      if (table !== "loc" && peer === "") return json({ error: `table ${table} needs ?peer=ADDRESS` }, 400);
      if (!s) return json([]);
      let routes: Route[];
      try {
        routes = table === "loc" ? s.locRib() : table === "in" ? s.adjRibIn(peer) : s.adjRibOut(peer);
      } catch (e) {
        return json({ error: (e as Error).message }, 404);
      }
      const filtered = table === "loc" && peer !== "" ? routes.filter((r) => r.source === peer) : routes;
      return json(filtered.map(routeJson));
    }
    return json({ error: "not found; try /peers or /routes?table=loc|in|out&peer=ADDRESS" }, 404);
  };
}

/** Serves the admin API until the signal aborts. Port 0 disables it (upstream's meaning). */
export function serveAdmin(
  address: string,
  port: number,
  view: () => SpeakerView | null,
  signal: AbortSignal,
): Deno.HttpServer | null {
  if (port === 0) return null;
  return Deno.serve(
    { hostname: address || "127.0.0.1", port, signal, onListen: () => {} },
    adminHandler(view),
  );
}

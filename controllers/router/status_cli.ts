/**
 * `kube-router bgp peers|routes [--json] [--admin-address A] [--admin-port P] [--table loc|in|out]
 * [--peer ADDR]`: reads the router's admin API and prints a table (in the spirit of
 * `gobgp neighbor` / `birdc show protocols`) or the raw JSON.
 *
 * @module
 */
import type { PeerStatus } from "../../bgp/mod.ts";
import type { RouteJson } from "./admin.ts";
import { walkArgs } from "../../options/argv.ts";

const USAGE = `usage: kube-router bgp peers|routes [--json] [--admin-address ADDR] [--admin-port PORT]
                       [--table loc|in|out] [--peer ADDRESS]`;

export interface BgpStatusArgs {
  what: "peers" | "routes";
  json: boolean;
  address: string;
  port: number;
  table: "loc" | "in" | "out";
  peer: string;
  /** `--help`/`-h`: print the usage on stdout and exit 0. */
  help?: boolean;
}

/** Parses the arguments after `bgp`; throws a one-line error on bad input. */
export function parseBgpStatusArgs(argv: readonly string[]): BgpStatusArgs {
  const out: BgpStatusArgs = {
    what: "peers",
    json: false,
    address: "127.0.0.1",
    port: 50051,
    table: "loc",
    peer: "",
  };
  let what: string | undefined;
  const missing = (a: string) => new Error(`bgp: ${a} needs a value\n${USAGE}`);
  for (const arg of walkArgs(argv, missing)) {
    const a = arg.name;
    const next = () => arg.value();
    switch (a) {
      case "--json":
        out.json = true;
        break;
      case "--admin-address":
      case "--gobgp-admin-address":
        out.address = next();
        break;
      case "--admin-port":
      case "--gobgp-admin-port": {
        const v = next();
        out.port = Number(v);
        if (!Number.isInteger(out.port) || out.port < 1 || out.port > 65535) {
          throw new Error(`bgp: --admin-port ${JSON.stringify(v)} is not a port 1-65535`);
        }
        break;
      }
      case "--table": {
        const v = next();
        if (v !== "loc" && v !== "in" && v !== "out") {
          throw new Error(`bgp: --table ${JSON.stringify(v)}: use loc, in or out`);
        }
        out.table = v;
        break;
      }
      case "--peer":
        out.peer = next();
        break;
      case "-h":
      case "--help":
        out.help = true;
        break;
      default:
        if (a.startsWith("-") || what !== undefined) {
          throw new Error(`bgp: unexpected ${JSON.stringify(a)}\n${USAGE}`);
        }
        what = a;
    }
  }
  if (what !== undefined && what !== "peers" && what !== "routes") {
    throw new Error(`bgp: ${JSON.stringify(what)} is not a subcommand; use peers or routes\n${USAGE}`);
  }
  out.what = (what ?? "peers") as BgpStatusArgs["what"];
  return out;
}

/** "3d4h", "5m12s", "42s" like gobgp. */
export function formatUptime(ms: number): string {
  if (ms <= 0) return "never";
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d}d${h}h`;
  if (h > 0) return `${h}h${m}m`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd()).join("\n") + "\n";
}

/** The human table of peers. */
export function formatPeers(peers: PeerStatus[]): string {
  const rows = [[
    "PEER",
    "ASN",
    "STATE",
    "UPTIME",
    "RECEIVED",
    "ACCEPTED",
    "ADVERTISED",
    "DESCRIPTION",
    "LAST ERROR",
  ]];
  for (const p of peers) {
    rows.push([
      p.address,
      String(p.asn),
      p.state,
      p.state === "Established" ? formatUptime(p.uptimeMs) : "never",
      String(p.prefixesReceived),
      String(p.prefixesAccepted),
      String(p.prefixesAdvertised),
      p.description || "-",
      // One line per peer: the speaker's last error may be a multi-line NOTIFICATION dump.
      p.lastError ? p.lastError.replaceAll(/\s+/g, " ") : "-",
    ]);
  }
  return table(rows);
}

/** The human table of routes. */
export function formatRoutes(routes: RouteJson[]): string {
  const rows = [["PREFIX", "NEXT HOP", "SOURCE", "AS PATH", "LOCAL PREF", "STALE"]];
  for (const r of routes) {
    rows.push([
      r.prefix,
      r.nextHop,
      r.source,
      r.asPath.join(" ") || "-",
      r.localPref === undefined ? "-" : String(r.localPref),
      r.stale ? "yes" : "",
    ]);
  }
  return table(rows);
}

/** Runs the subcommand; returns the exit code (0 ok, 1 unreachable/API error, 2 usage). */
export async function runBgpStatus(argv: string[]): Promise<number> {
  let args: BgpStatusArgs;
  try {
    args = parseBgpStatusArgs(argv);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const host = args.address.includes(":") ? `[${args.address}]` : args.address;
  const path = args.what === "peers"
    ? "/peers"
    : `/routes?table=${args.table}${args.peer ? `&peer=${encodeURIComponent(args.peer)}` : ""}`;
  const url = `http://${host}:${args.port}${path}`;
  let body: unknown;
  try {
    const res = await fetch(url);
    body = await res.json();
    if (!res.ok) {
      console.error(`bgp: ${url}: ${(body as { error?: string }).error ?? res.statusText}`);
      return 1;
    }
  } catch (e) {
    console.error(
      `bgp: cannot reach the router's admin API at ${url} (is the router running with --gobgp-admin-port?): ${
        (e as Error).message
      }`,
    );
    return 1;
  }
  if (args.json) {
    console.log(JSON.stringify(body, null, 2));
  } else if (args.what === "peers") {
    Deno.stdout.writeSync(new TextEncoder().encode(formatPeers(body as PeerStatus[])));
  } else {
    Deno.stdout.writeSync(new TextEncoder().encode(formatRoutes(body as RouteJson[])));
  }
  return 0;
}

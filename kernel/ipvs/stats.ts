/**
 * Per-virtual-service counters and rates from `ipvsadm -Ln --stats --exact` and
 * `ipvsadm -Ln --rate --exact`: what upstream's `kube_router_service_*` series report.
 *
 * The layout follows the format strings of ipvsadm 1.31 (`%-33s %8s %8s %8s %8s %8s` for the
 * header, a service line `PROT  ADDR:PORT` or `FWM  N` padded to 33 columns, then five numbers;
 * real-server lines start with `  ->`). This kernel has no IPVS, so the parser is tested on
 * hand-written samples in that format.
 *
 * @module
 */
import type { Runner } from "../exec.ts";

/** Counters since the service was created, and the kernel's rate estimates (per second). */
export interface IpvsServiceStats {
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
}

/** Key of a virtual service as ipvsadm lists it: `TCP 10.96.0.1:443`, `UDP [2001:db8::a]:53`, `FWM 9134`. */
export function statsKey(protocol: string, addr: string, port?: number): string {
  if (protocol.toUpperCase() === "FWM") return `FWM ${addr}`;
  const host = addr.includes(":") ? `[${addr}]` : addr;
  return `${protocol.toUpperCase()} ${host}:${port}`;
}

const SUFFIX: Record<string, number> = { "": 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** Parses one table (`--stats` or `--rate`): service key → its five numbers. Real servers are skipped. */
export function parseStatsTable(text: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const line of text.split("\n")) {
    const m =
      /^(TCP|UDP|SCTP|FWM)\s+(\S+)((?:\s+IPv6)?)\s+(\d+[KMGT]?)\s+(\d+[KMGT]?)\s+(\d+[KMGT]?)\s+(\d+[KMGT]?)\s+(\d+[KMGT]?)\s*$/
        .exec(line);
    if (!m) continue;
    const nums = m.slice(4, 9).map((v) => {
      const s = /^(\d+)([KMGT]?)$/.exec(v)!;
      return Number(s[1]) * SUFFIX[s[2]];
    });
    out.set(`${m[1]} ${m[2]}`, nums);
  }
  return out;
}

/** Joins the two tables into one record per service. */
export function joinStats(stats: string, rate: string): Map<string, IpvsServiceStats> {
  const s = parseStatsTable(stats), r = parseStatsTable(rate);
  const out = new Map<string, IpvsServiceStats>();
  for (const [k, [conns, inPkts, outPkts, inBytes, outBytes]] of s) {
    const [cps, inPps, outPps, inBps, outBps] = r.get(k) ?? [0, 0, 0, 0, 0];
    out.set(k, { conns, inPkts, outPkts, inBytes, outBytes, cps, inPps, outPps, inBps, outBps });
  }
  return out;
}

/** Reads both tables (two read-only ipvsadm runs). */
export async function readIpvsStats(runner: Runner): Promise<Map<string, IpvsServiceStats>> {
  const stats = await runner.run(["ipvsadm", "-Ln", "--stats", "--exact"], { readOnly: true });
  const rate = await runner.run(["ipvsadm", "-Ln", "--rate", "--exact"], { readOnly: true });
  return joinStats(stats.stdout, rate.stdout);
}

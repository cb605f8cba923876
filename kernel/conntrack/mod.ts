/**
 * conntrack(8): deleting stale flows. When a UDP endpoint goes away, flows that were NATed to it
 * stay in the table and keep sending the client's packets into the void until they time out;
 * deleting them lets the next packet be scheduled again.
 *
 * One `conntrack -D` per removed endpoint (the tool has no batch mode for deletes); a filter that
 * matches nothing exits 1 with "0 flow entries have been deleted", which is success here.
 *
 * @module
 */
import type { Runner } from "../exec.ts";

/** A flow filter: original destination (the VIP) and, optionally, the backend that answered. */
export interface FlowFilter {
  protocol: "tcp" | "udp" | "sctp";
  /** Original destination address and port (the service VIP and port). */
  origDst: string;
  origDstPort: number;
  /** Reply source (the endpoint after DNAT/IPVS masquerading). */
  replySrc?: string;
  replySrcPort?: number;
}

/** The argv of `conntrack -D` for a filter. */
export function deleteArgv(f: FlowFilter): string[] {
  const fam = f.origDst.includes(":") ? ["-f", "ipv6"] : [];
  const argv = [
    "conntrack",
    "-D",
    ...fam,
    "-p",
    f.protocol,
    "--orig-dst",
    f.origDst,
    "--orig-port-dst",
    String(f.origDstPort),
  ];
  if (f.replySrc) argv.push("--reply-src", f.replySrc);
  if (f.replySrcPort) argv.push("--reply-port-src", String(f.replySrcPort));
  return argv;
}

/** Parses "N flow entries have been deleted." from conntrack's stderr (0 when absent). */
export function parseDeletedCount(stderr: string): number {
  const m = /(\d+) flow entr(?:y|ies) ha(?:s|ve) been deleted/.exec(stderr);
  return m ? Number(m[1]) : 0;
}

/** Deletes the flows matching each filter; returns how many flows were deleted in total. */
export async function deleteFlows(runner: Runner, filters: readonly FlowFilter[]): Promise<number> {
  let n = 0;
  for (const f of filters) {
    const r = await runner.run(deleteArgv(f), { okCodes: [0, 1] });
    n += parseDeletedCount(r.stderr);
  }
  return n;
}

/**
 * Containment of a refused transaction in the proxy's IPVS mode. Conversion (watch/convert.ts)
 * stops bad values at the edge, but a tool may still refuse a batch for reasons no check
 * foresees (a scheduler module the kernel lacks, a kernel limit). The refusal is traced back to
 * the Service it was rendered for: through the line the tool names (`ipset restore`,
 * `iptables-restore`, `ip -batch`), or, for `ipvsadm -R` (which names no line, and may have run
 * the lines before the refused one), by bisecting the virtual services and re-reading the table.
 * That Service is left out of the plan (its VIPs are then not served: never half-applied), the
 * rest is applied, and the Service is reported (controllers/refused.ts).
 *
 * @module
 */
import { ExecError } from "../../kernel/exec.ts";
import type { RefusedObject } from "../refused.ts";
import type { ClusterSnapshot, ServiceInfo } from "../../watch/types.ts";
import type { ProxyPlan, VipKind, VirtualService } from "./types.ts";

/** The Service field a virtual service's VIP comes from. */
export function vipField(kind: VipKind): string {
  switch (kind) {
    case "clusterip":
      return "spec.clusterIP";
    case "externalip":
      return "spec.externalIPs";
    case "loadbalancer":
      return "status.loadBalancer.ingress";
    case "nodeport":
      return "spec.ports.nodePort";
  }
}

/** The object and value a virtual service stands for. */
export function refusedService(vs: VirtualService, reason: string): RefusedObject {
  const value = vs.kind === "nodeport" ? String(vs.port) : vs.vip;
  return {
    object: `Service ${vs.service}`,
    field: vipField(vs.kind),
    value: `${value}${vs.kind === "nodeport" ? "" : `:${vs.port}`}/${vs.protocol.toLowerCase()}`,
    reason,
  };
}

/** Addresses (with an optional `/len`) and port numbers a line mentions, as tokens. */
function tokens(line: string): Set<string> {
  const out = new Set<string>();
  for (const t of line.split(/[\s,]+/)) {
    // "10.96.0.1/32", "[2001:db8::1]:80", "10.96.0.1,tcp:80" (ipset hash:ip,port), "tcp:80".
    const bare = t.replace(/^\[/, "").replace(/\](:\d+)?$/, "").replace(/\/\d+$/, "");
    out.add(bare);
    const port = /(?:^|:)(\d{1,5})$/.exec(t);
    if (port) out.add(`port ${port[1]}`);
  }
  return out;
}

/**
 * The Services a refused line was rendered for: every virtual service (or no-endpoint reject, or
 * DSR mark) whose VIP the line names, narrowed to those whose port it names too when any does.
 */
export function servicesInLine(line: string, plan: ProxyPlan, reason: string): RefusedObject[] {
  const t = tokens(line);
  const byVip = plan.services.filter((vs) => !vs.fwmark && t.has(vs.vip));
  const byPort = byVip.filter((vs) => t.has(`port ${vs.port}`));
  const hits = byPort.length ? byPort : byVip;
  const out = new Map<string, RefusedObject>();
  for (const vs of hits) if (!out.has(vs.service)) out.set(vs.service, refusedService(vs, reason));
  if (out.size === 0) {
    for (const r of [...plan.rejects, ...plan.dsrMarks]) {
      if (!t.has(r.vip) || out.has(r.service)) continue;
      out.set(r.service, {
        object: `Service ${r.service}`,
        field: "spec",
        value: `${r.vip}:${r.port}/${r.protocol.toLowerCase()}`,
        reason,
      });
    }
  }
  return [...out.values()];
}

/** The Services the line a tool refused names; empty when the error names no line we can trace. */
export function refusedByLine(err: unknown, plan: ProxyPlan): RefusedObject[] {
  if (!(err instanceof ExecError) || !err.offendingLine) return [];
  // The last tool named (a runner may prefix `ip netns exec NS`).
  const tool = err.argv.filter((a) => /^(ipset|ip6?tables\S*|ipvsadm|ip)$/.test(a)).at(-1) ?? err.argv[0];
  const reason = `${tool} refused ${JSON.stringify(err.offendingLine.text.trim())}: ${
    err.stderr.trim().split("\n").slice(-1)[0]
  }`;
  return servicesInLine(err.offendingLine.text, plan, reason);
}

/** The snapshot without the Services in `left` ("Service ns/name"). */
export function withoutServices(snap: ClusterSnapshot, left: Iterable<string>): ClusterSnapshot {
  let services: Map<string, ServiceInfo> | undefined;
  for (const object of left) {
    const [kind, key] = object.split(" ");
    if (kind !== "Service" || !snap.services.has(key)) continue;
    services ??= new Map(snap.services);
    services.delete(key);
  }
  return services ? { ...snap, services } : snap;
}

/** The snapshot's instance of "Service ns/name" (undefined when gone). */
export function serviceInstance(snap: ClusterSnapshot, object: string): unknown {
  const [kind, key] = object.split(" ");
  return kind === "Service" ? snap.services.get(key) : undefined;
}

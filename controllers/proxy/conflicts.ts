/**
 * Conflicts in valid API data: two Services claiming the same address, protocol and port (most
 * often one externalIP:port given to two Services, or a LoadBalancer IP shared by mistake). The
 * kernel can hold one virtual service per address:port, and one Service's "no endpoints" REJECT
 * would refuse the other's traffic; left alone, the result would depend on render order.
 *
 * Rule (as kube-proxy resolves conflicting services): the OLDEST Service wins (creationTimestamp,
 * then namespace/name for equal or unknown times, e.g. manifests); the others are not served at
 * that address:port, and each loser gets one warning naming the winner. Everything else of the
 * losing Services is served as usual.
 *
 * @module
 */
import type { ServiceInfo } from "../../watch/types.ts";
import type { PlanWarning, RejectEntry, VirtualService } from "./types.ts";

const FIELD: Record<VirtualService["kind"], string> = {
  clusterip: "spec.clusterIPs",
  nodeport: "spec.ports[].nodePort",
  externalip: "spec.externalIPs",
  loadbalancer: "status.loadBalancer.ingress",
};

/** Creation time in ms; unknown (manifests) sorts after every known time. */
function age(svc: string, services: ReadonlyMap<string, ServiceInfo>): number {
  const t = Date.parse(services.get(svc)?.creationTimestamp ?? "");
  return Number.isNaN(t) ? Infinity : t;
}

/** True when Service `a` wins over `b`: older, or as old and first by namespace/name. */
function older(a: string, b: string, services: ReadonlyMap<string, ServiceInfo>): boolean {
  const ta = age(a, services), tb = age(b, services);
  return ta !== tb ? ta < tb : a < b;
}

const tuple = (vip: string, protocol: string, port: number) => `${protocol}/${vip}/${port}`;

/**
 * Keeps, for every address/protocol/port claimed by more than one Service, only the oldest
 * Service's virtual service and reject entry. Returns the inputs themselves when nothing conflicts.
 */
export function resolveConflicts(
  services: VirtualService[],
  rejects: RejectEntry[],
  known: ReadonlyMap<string, ServiceInfo>,
): { services: VirtualService[]; rejects: RejectEntry[]; warnings: PlanWarning[] } {
  const owner = new Map<string, string>();
  let conflict = false;
  const claim = (t: string, svc: string) => {
    const cur = owner.get(t);
    if (cur === undefined) owner.set(t, svc);
    else if (cur !== svc) {
      conflict = true;
      if (older(svc, cur, known)) owner.set(t, svc);
    }
  };
  for (const vs of services) if (vs.fwmark === 0) claim(tuple(vs.vip, vs.protocol, vs.port), vs.service);
  for (const r of rejects) claim(tuple(r.vip, r.protocol, r.port), r.service);
  if (!conflict) return { services, rejects, warnings: [] };

  const warnings: PlanWarning[] = [];
  const warned = new Set<string>();
  const lose = (t: string, svc: string, kind: VirtualService["kind"] | undefined) => {
    const k = `${svc} ${t}`;
    if (warned.has(k)) return;
    warned.add(k);
    const [protocol, vip, port] = t.split("/");
    const proto = protocol.toLowerCase();
    warnings.push({
      service: svc,
      field: kind ? FIELD[kind] : "spec.externalIPs",
      message:
        `${vip}:${port}/${proto} is also claimed by service ${owner.get(t)}, which is older and wins ` +
        "(oldest Service wins); this service is not served there",
    });
  };
  const keptServices = services.filter((vs) => {
    if (vs.fwmark !== 0) return true;
    const t = tuple(vs.vip, vs.protocol, vs.port);
    if (owner.get(t) === vs.service) return true;
    lose(t, vs.service, vs.kind);
    return false;
  });
  const keptRejects = rejects.filter((r) => {
    const t = tuple(r.vip, r.protocol, r.port);
    if (owner.get(t) === r.service) return true;
    lose(t, r.service, undefined);
    return false;
  });
  return { services: keptServices, rejects: keptRejects, warnings };
}

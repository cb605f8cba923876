/**
 * Containment of a refused nftables transaction (the firewall's `contain.ts`, for the proxy):
 * conversion stops bad values at the edge, but nft may still refuse a batch for a reason no check
 * foresees (an element the kernel already holds with another verdict, a kernel limit). One
 * refused Service must not keep every other Service's update out of the kernel: the line and the
 * element nft pointed at (`/dev/stdin:LINE:COLS`) are traced back to the Service they were made
 * for, that Service is left out, the rest is applied, and the refusal is reported.
 *
 * "Left out" keeps what the kernel last had for that Service (its virtual services and reject
 * entries as last applied: nothing opens, nothing that worked is blackholed), or nothing if it
 * never was applied. It is retried when its objects change, and at every periodic resync.
 *
 * @module
 */
import * as nft from "../../kernel/nft/mod.ts";
import { serviceObjectNames } from "./nft_render.ts";
import type { MetricsRegistry } from "../../observe/metrics.ts";
import type { NftApplier, NftApplyResult } from "./nft_apply.ts";
import type { ProxyPlan, VirtualService } from "./types.ts";

/** A Service left out, the plan entries that were refused (a change is retried), and why. */
export interface RefusedService {
  service: string;
  /** Fingerprint of the Service's virtual services when refused. */
  fingerprint: string;
  since: number;
  reason: string;
}

/** Fingerprint of one Service's entries in a plan (the planner reuses unchanged objects). */
export function serviceFingerprint(plan: ProxyPlan, service: string): string {
  const vs = plan.services.filter((v) => v.service === service);
  const rj = plan.rejects.filter((r) => r.service === service);
  return JSON.stringify([vs, rj]);
}

function splitKey(key: string): string[] {
  return key.split(" . ").map((p) => p.trim());
}

/** The Service a refused line (and the element nft pointed at) belongs to, if one does. */
export function refusedService(err: unknown, plan: ProxyPlan): string | undefined {
  const at = nft.refusedAt(err);
  if (!at) return undefined;
  const text = at.text;
  const element = /^(?:add|delete) element \S+ \S+ (\S+) \{/.exec(text);
  if (element && at.span) {
    const set = element[1];
    const k = splitKey(at.span.split(" : ")[0]);
    const matchVs = (vs: VirtualService) =>
      vs.vip === k[0] && vs.protocol.toLowerCase() === k[1] && String(vs.port) === k[2];
    if (set === "service-ips" || set === "endpoints") return plan.services.find(matchVs)?.service;
    if (set === "no-endpoints-tcp") {
      return plan.rejects.find((r) => r.vip === k[0] && r.protocol === "TCP" && String(r.port) === k[1])
        ?.service;
    }
    if (set === "no-endpoints") {
      return plan.rejects.find((r) =>
        r.vip === k[0] && r.protocol.toLowerCase() === k[1] && String(r.port) === k[2]
      )
        ?.service;
    }
    if (set === "hairpin") {
      return plan.services.find((vs) => vs.hairpin && vs.realServers.some((r) => r.ip === k[0]))?.service;
    }
  }
  // A line about one of a Service's own chains or sets (`svc-…`, `ep-…`, `aff-…`).
  const names = new Set(text.split(/\s+/).map((w) => w.replace(/^@/, "")));
  for (const vs of plan.services) {
    if (serviceObjectNames(vs).some((n) => names.has(n))) return vs.service;
  }
  return undefined;
}

/**
 * The plan with refused Services as they were last applied (or absent). Entries whose Service
 * changed since it was refused are dropped from `refused` (they get a new chance).
 */
export function withoutRefused(
  plan: ProxyPlan,
  last: ProxyPlan | undefined,
  refused: Map<string, RefusedService>,
): ProxyPlan {
  for (const [svc, r] of refused) if (serviceFingerprint(plan, svc) !== r.fingerprint) refused.delete(svc);
  if (refused.size === 0) return plan;
  const out = (s: { service: string }) => refused.has(s.service);
  const services = [
    ...plan.services.filter((v) => !out(v)),
    ...(last?.services.filter(out) ?? []),
  ].sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  const rejects = [...plan.rejects.filter((r) => !out(r)), ...(last?.rejects.filter(out) ?? [])];
  return { ...plan, services, rejects };
}

/** What `applyContained` reports through. */
export interface ContainContext {
  now: number;
  /** Refused Services get another chance after this long (the periodic resync). */
  retryAfterMs: number;
  log: { error(msg: string, props?: Record<string, unknown>): void };
  metrics: MetricsRegistry;
  healthNote?: (lines: string[]) => void;
}

/**
 * Applies `plan` with refused Services left out; when nft refuses the batch and the refusal
 * traces to one Service, leaves that Service out too and tries again (up to 8 times). Throws
 * what nft said when a refusal traces to no Service. Returns the plan that was applied.
 */
export async function applyContained(
  applier: NftApplier,
  plan: ProxyPlan,
  last: ProxyPlan | undefined,
  refused: Map<string, RefusedService>,
  ctx: ContainContext,
): Promise<{ applied: ProxyPlan; result: NftApplyResult }> {
  for (const [k, r] of refused) if (ctx.now - r.since >= ctx.retryAfterMs) refused.delete(k);
  let p = withoutRefused(plan, last, refused);
  let result: NftApplyResult;
  for (let attempt = 0;; attempt++) {
    try {
      result = await applier.apply(p);
      break;
    } catch (e) {
      const service = attempt < 8 ? refusedService(e, p) : undefined;
      if (!service || refused.has(service)) throw e;
      const reason = (e as Error).message;
      refused.set(service, {
        service,
        fingerprint: serviceFingerprint(plan, service),
        since: ctx.now,
        reason,
      });
      ctx.metrics.counter(
        "kube_router_proxy_objects_refused_total",
        "Objects left out of the service proxy because a tool refused their rules",
      ).inc({ kind: "Service" });
      ctx.log.error(
        "Service {service} left out of the nftables proxy: nft refused its rules ({reason}); it keeps what " +
          "was last applied for it; the rest is applied, and it is retried when it changes or at the next resync",
        { service, reason },
      );
      p = withoutRefused(plan, last, refused);
    }
  }
  ctx.metrics.gauge("kube_router_proxy_objects_refused", "Objects currently left out of the service proxy")
    .set(refused.size);
  ctx.healthNote?.(
    [...refused.values()].map((r) => `proxy: Service ${r.service} left out (nft refused it): ${r.reason}`),
  );
  return { applied: p, result };
}

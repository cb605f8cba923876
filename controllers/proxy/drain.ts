/**
 * Graceful termination for IPVS real servers, pure (time is an argument). A real server that is
 * terminating (in its EndpointSlice, serving but not ready) or, with
 * `--ipvs-graceful-termination`, has just disappeared from the slice stays in IPVS at weight 0:
 * its open connections finish, no new ones arrive. It is removed when its grace period is over:
 * the pod's `terminationGracePeriodSeconds` when the pod is known, else `--ipvs-graceful-period`.
 *
 * @module
 */
import { hostPort } from "../../net/ip.ts";
import type { ProxyPlan, RealServer } from "./types.ts";

export interface DrainEntry {
  deadline: number;
  rs: RealServer;
}

/** virtual-service key → "ip:port" → entry. */
export type DrainState = Map<string, Map<string, DrainEntry>>;

export interface DrainOptions {
  /** `--ipvs-graceful-termination`: keep removed endpoints at weight 0 for their grace period. */
  gracefulRemoval: boolean;
  /** `--ipvs-graceful-period` in ms. */
  gracePeriodMs: number;
  /** The pod's grace period in ms, when the pod is known. */
  podGraceMs(pod: string): number | undefined;
}

export interface DrainResult {
  plan: ProxyPlan;
  state: DrainState;
  /** Earliest deadline still pending (a sync should run then), or undefined. */
  nextDeadline?: number;
}

/** Merges draining real servers into `next` and drops those whose grace period is over. */
export function applyDrain(
  prev: ProxyPlan | undefined,
  next: ProxyPlan,
  state: DrainState,
  now: number,
  opts: DrainOptions,
): DrainResult {
  const out: DrainState = new Map();
  const prevByKey = new Map((prev?.services ?? []).map((v) => [v.key, v]));
  let nextDeadline: number | undefined;
  const deadlineFor = (vsKey: string, rs: RealServer) => {
    const k = hostPort(rs.ip, rs.port);
    const old = state.get(vsKey)?.get(k);
    return old?.deadline ??
      now + (rs.pod ? opts.podGraceMs(rs.pod) ?? opts.gracePeriodMs : opts.gracePeriodMs);
  };
  const services = next.services.map((vs) => {
    const keep: RealServer[] = [];
    const drains = new Map<string, DrainEntry>();
    const present = new Set(vs.realServers.map((r) => hostPort(r.ip, r.port)));
    const consider = (rs: RealServer) => {
      const deadline = deadlineFor(vs.key, rs);
      // An expired entry is remembered while the slice still lists the endpoint as terminating:
      // forgetting it would give the endpoint a fresh grace period (and re-add it) at the next sync.
      drains.set(hostPort(rs.ip, rs.port), { deadline, rs });
      if (deadline <= now) return false;
      nextDeadline = nextDeadline === undefined ? deadline : Math.min(nextDeadline, deadline);
      return true;
    };
    for (const r of vs.realServers) {
      if (r.weight > 0) keep.push(r);
      else if (consider(r)) keep.push(r);
    }
    if (opts.gracefulRemoval) {
      const old = prevByKey.get(vs.key);
      for (const r of old?.realServers ?? []) {
        if (present.has(hostPort(r.ip, r.port))) continue;
        const drained = { ...r, weight: 0 };
        if (consider(drained)) keep.push(drained);
      }
    }
    if (drains.size) out.set(vs.key, drains);
    if (keep.length === vs.realServers.length && keep.every((r, i) => r === vs.realServers[i])) return vs;
    keep.sort((a, b) => hostPort(a.ip, a.port) < hostPort(b.ip, b.port) ? -1 : 1);
    return { ...vs, realServers: keep };
  });
  return { plan: { ...next, services }, state: out, nextDeadline };
}

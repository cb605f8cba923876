/**
 * Applies IPVS mode: VIPs on `kube-dummy-if` (one `ip -batch`), the proxy's ipsets (one
 * `ipset restore` swap script), its iptables chains (one `iptables-restore --noflush` per
 * family), the IPVS table (read `ipvsadm -Sn`, diff, one `ipvsadm -R`), and the IPVS timeouts
 * (`ipvsadm --set`). Each step runs only when its desired state changed since the last successful
 * apply, or when a verification pass (periodic resync) re-reads the kernel.
 *
 * Only IPVS services we own are edited or deleted: their VIP is in our `kube-router-svip` set (in
 * the kernel, i.e. we created it) or in what we applied last, their firewall mark is one of our DSR
 * marks, and their address is not inside `--excluded-cidrs`.
 *
 * @module
 */
import { sha256 } from "../../kernel/sha256.ts";
import { isDeepStrictEqual } from "node:util";
import { ExecError, type Runner } from "../../kernel/exec.ts";
import {
  applyAddressLines,
  ensureVipLink,
  linkAddresses,
  renderAddressSync,
} from "../../kernel/ip/address.ts";
import * as ipset from "../../kernel/ipset/mod.ts";
import * as iptables from "../../kernel/iptables/mod.ts";
import {
  diffTables,
  type IpvsDestination,
  type IpvsEntry,
  type IpvsService,
  ipvsServiceKey,
  type IpvsTable,
  readIpvs,
  renderBatch,
  restoreIpvs,
  setTimeouts,
} from "../../kernel/ipvs/mod.ts";
import { anyCidrContains, type Cidr, type Family } from "./ip.ts";
import { ipsetState, type IptablesFamilyState, iptablesState, setName } from "./iptables_render.ts";
import { type RefusedObject, RefusedObjectsError } from "../refused.ts";
import { refusedByLine, refusedService } from "./contain.ts";
import { familyName, hostPort } from "../../net/ip.ts";
import type { ProxyOptions, ProxyPlan, VirtualService } from "./types.ts";

export const DUMMY_IF = "kube-dummy-if";

/** Scheduler flag names of the plan → ipvsadm flag bits. */
const FLAG_BIT = { "flag-1": 1, "flag-2": 2, "flag-3": 3 } as const;

/** The IPVS service of a virtual service (without its destinations). */
export function ipvsServiceOf(vs: VirtualService): IpvsService {
  const service: IpvsService = vs.fwmark
    ? { family: vs.family, fwmark: vs.fwmark, port: 0, scheduler: vs.scheduler, schedFlags: [], ops: false }
    : {
      family: vs.family,
      protocol: vs.protocol.toLowerCase() as IpvsService["protocol"],
      address: vs.vip,
      port: vs.port,
      fwmark: 0,
      scheduler: vs.scheduler,
      schedFlags: [],
      ops: false,
    };
  service.schedFlags = vs.schedFlags.map((f) => FLAG_BIT[f]).sort();
  if (vs.persistence > 0) service.persistence = vs.persistence;
  return service;
}

/** The IPVS table a plan asks for. */
export function desiredIpvsTable(plan: ProxyPlan): IpvsTable {
  const t: IpvsTable = new Map();
  for (const vs of plan.services) {
    const service = ipvsServiceOf(vs);
    const destinations = new Map<string, IpvsDestination>();
    for (const r of vs.realServers) {
      destinations.set(hostPort(r.ip, r.port), {
        address: r.ip,
        port: r.port,
        forward: vs.forward,
        weight: r.weight,
        upperThreshold: 0,
        lowerThreshold: 0,
      });
    }
    const key = ipvsServiceKey(service);
    const existing = t.get(key);
    // Two DSR services of one family share a mark only on a hash collision; merge their servers.
    if (existing) { for (const [k, d] of destinations) existing.destinations.set(k, d); }
    else t.set(key, { service, destinations } satisfies IpvsEntry);
  }
  return t;
}

export interface IpvsApplierOptions {
  families: readonly Family[];
  backend: iptables.IptablesBackend;
  excludedCidrs: readonly Cidr[];
  options: ProxyOptions;
  /** Called once when kube-dummy-if had to be a bridge (no dummy driver). */
  warn(message: string): void;
}

interface Applied {
  dummy: string[];
  sets: ipset.DesiredSet[];
  iptables: Map<Family, IptablesFamilyState>;
  /** The plan's virtual services (objects the Planner reuses while unchanged). */
  services: VirtualService[];
  timeouts: string;
}

/** Deep equality with a fast path for the shared objects the Planner hands out unchanged. */
function same<T>(a: T, b: T): boolean {
  return a === b || isDeepStrictEqual(a, b);
}

export class IpvsApplier {
  #last?: Applied;
  #linkReady = false;
  /** Keys of every IPVS service this applier sent to the kernel: ours even after a failed apply. */
  #sent = new Set<string>();

  constructor(private readonly runner: Runner, private readonly o: IpvsApplierOptions) {}

  /** Forgets what was applied so the next apply re-reads and rewrites everything. */
  invalidate(): void {
    this.#last = undefined;
    this.#linkReady = false;
  }

  /**
   * Applies a plan. With `verify` (or after a failure), kernel state is re-read and diffed whole;
   * otherwise only what changed since the last successful apply is sent, and the IPVS batch is
   * computed from the virtual services whose objects changed. Returns the names of the steps that
   * ran a mutating command.
   */
  async apply(plan: ProxyPlan, verify = false): Promise<string[]> {
    const ran: string[] = [];
    const last = verify ? undefined : this.#last;
    const want: Applied = {
      dummy: plan.dummyAddresses,
      sets: this.o.families.flatMap((f) => ipsetState(plan, f)),
      iptables: new Map(this.o.families.map((f) => [f, iptablesState(plan, this.o.options, f)])),
      services: plan.services,
      timeouts: JSON.stringify(plan.timeouts),
    };
    const servicesSame = last !== undefined && last.services.length === want.services.length &&
      last.services.every((v, i) => v === want.services[i]);
    if (
      last && servicesSame && same(last.dummy, want.dummy) && same(last.sets, want.sets) &&
      same(last.iptables, want.iptables) && last.timeouts === want.timeouts
    ) {
      return ran;
    }
    try {
      await this.#apply(plan, last, want, ran);
    } catch (e) {
      // Whatever part ran, the next sync re-reads the kernel and diffs whole.
      this.#last = undefined;
      throw e;
    }
    this.#last = want;
    return ran;
  }

  async #apply(plan: ProxyPlan, last: Applied | undefined, want: Applied, ran: string[]): Promise<void> {
    // Read IPVS first: on a kernel without it, fail before changing anything else.
    let kernel: IpvsTable | undefined;
    if (!last) {
      try {
        kernel = await readIpvs(this.runner);
      } catch (e) {
        if (e instanceof ExecError && /Protocol not available|Can't initialize ipvs/i.test(e.stderr)) {
          throw new Error(
            'ipvsadm -Sn: this kernel has no IPVS ("Protocol not available"); load ip_vs or run with --service-proxy-mode=nftables',
            { cause: e },
          );
        }
        throw e;
      }
    }
    if (!this.#linkReady) {
      const how = await ensureVipLink(this.runner, DUMMY_IF);
      if (how === "bridge") {
        this.o.warn(
          `${DUMMY_IF}: this kernel has no dummy link type; created a port-less bridge to hold VIPs`,
        );
      }
      if (how !== "exists") ran.push("link");
      this.#linkReady = true;
    }

    if (!last || !same(last.dummy, want.dummy)) {
      const have = (await linkAddresses(this.runner, DUMMY_IF)) ?? [];
      const lines = renderAddressSync(DUMMY_IF, have, want.dummy, {
        v4: plan.nodeIps[4],
        v6: plan.nodeIps[6],
      });
      if (lines.length) {
        await applyAddressLines(this.runner, lines).catch((e) => traced(e, plan));
        ran.push("ip");
      }
    }

    // Sets before rules: the INPUT jump matches kube-router-svip.
    if (!last || !same(last.sets, want.sets)) {
      const headers = await ipset.listHeaders(this.runner);
      const existing = new Map(headers.map((h) => [h.name, { type: h.type }]));
      const current = new Map<string, readonly string[]>();
      if (last) { for (const s of last.sets) current.set(s.name, s.entries); }
      const changed = want.sets.filter((s) =>
        !existing.has(s.name) || !last || !same(current.get(s.name), s.entries)
      );
      const script = ipset.renderSwapScript({ sets: changed, existing, tempName: tempSetName });
      if (script) {
        await ipset.restore(this.runner, script).catch((e) => traced(e, plan));
        ran.push("ipset");
      }
    }

    for (const f of this.o.families) {
      const st = want.iptables.get(f)!;
      if (last && same(last.iptables.get(f), st)) continue;
      const payload = await this.#iptablesPayload(st, !last);
      if (payload) {
        await iptables.restoreNoflush(this.runner, {
          family: familyName(f),
          backend: this.o.backend,
        }, payload).catch((e) => traced(e, plan));
        ran.push(`iptables-v${f}`);
      }
    }

    for (const vs of want.services) this.#sent.add(ipvsServiceKey(ipvsServiceOf(vs)));
    let batch: string;
    if (last) {
      // Only the virtual services whose objects changed: the kernel holds what we applied last.
      const before = new Set(last.services), after = new Set(want.services);
      const oldT = desiredIpvsTable({ ...plan, services: last.services.filter((v) => !after.has(v)) });
      const newT = desiredIpvsTable({ ...plan, services: want.services.filter((v) => !before.has(v)) });
      batch = renderBatch(diffTables(oldT, newT, { owned: () => true }));
    } else {
      batch = renderBatch(diffTables(kernel!, desiredIpvsTable(plan), { owned: await this.#owned(plan) }));
    }
    try {
      if (await restoreIpvs(this.runner, batch)) ran.push("ipvsadm");
    } catch (e) {
      ran.push("ipvsadm");
      await this.#containIpvs(plan, await this.#owned(plan), e);
    }

    if (!last || last.timeouts !== want.timeouts) {
      if (await setTimeouts(this.runner, plan.timeouts)) ran.push("ipvsadm-set");
    }
  }

  /**
   * `ipvsadm -R` refused the batch. It names no line and has run the lines before the refused
   * one, so the kernel is re-read and the virtual services still differing from the plan are
   * bisected, each half sent as its own batch: every service the kernel takes is applied, and
   * those it refuses alone are traced to their Services (thrown as a `RefusedObjectsError`, so
   * the controller leaves them out and applies again). A refused delete of a service we no
   * longer want names no object: it is reported and retried at the next verification.
   */
  async #containIpvs(plan: ProxyPlan, owned: (s: IpvsService) => boolean, first: unknown): Promise<void> {
    const desired = desiredIpvsTable(plan);
    const reasons = new Map<string, string>();
    const pick = (t: IpvsTable, keys: ReadonlySet<string>) => new Map([...t].filter(([k]) => keys.has(k)));
    const kernel0 = await readIpvs(this.runner);
    const pending = [
      ...new Set([...desired.keys(), ...[...kernel0].filter(([, e]) => owned(e.service)).map(([k]) => k)]),
    ].sort();
    const bisect = async (keys: string[]): Promise<void> => {
      const set = new Set(keys);
      const kernel = await readIpvs(this.runner);
      const batch = renderBatch(diffTables(pick(kernel, set), pick(desired, set), { owned }));
      if (batch === "") return;
      try {
        await restoreIpvs(this.runner, batch);
      } catch (e) {
        if (keys.length === 1) {
          reasons.set(keys[0], e instanceof ExecError ? e.stderr.trim() || e.message : (e as Error).message);
          return;
        }
        const mid = keys.length >> 1;
        await bisect(keys.slice(0, mid));
        await bisect(keys.slice(mid));
      }
    };
    await bisect(pending);
    if (reasons.size === 0) return; // the refusal did not recur (a transient one)
    const refused: RefusedObject[] = [];
    for (const [key, reason] of reasons) {
      const vss = plan.services.filter((vs) => ipvsServiceKey(ipvsServiceOf(vs)) === key);
      if (vss.length === 0) {
        this.o.warn(
          `ipvsadm -R refused to change IPVS service ${key}, which no Service wants any more: ${reason}`,
        );
      }
      for (const vs of vss) {
        if (!refused.some((r) => r.object === `Service ${vs.service}`)) {
          refused.push(refusedService(vs, `ipvsadm -R refused IPVS service ${key}: ${reason}`));
        }
      }
    }
    if (refused.length) throw new RefusedObjectsError(refused, { cause: first });
  }

  /**
   * Which IPVS services in the kernel are ours to edit or delete: not inside `--excluded-cidrs`,
   * and a DSR mark of ours, or a VIP we applied last or that our `kube-router-svip` set holds.
   */
  async #owned(plan: ProxyPlan): Promise<(s: IpvsService) => boolean> {
    const ourVips = await this.#ourVips();
    const ourMarks = new Set(plan.dsrMarks.map((m) => m.fwmark));
    for (const v of this.#last?.services ?? []) if (v.fwmark) ourMarks.add(v.fwmark);
    const lastKeys = new Set((this.#last?.services ?? []).map((v) => v.key));
    return (s: IpvsService) => {
      if (s.address && anyCidrContains(this.o.excludedCidrs, s.address)) return false;
      if (s.fwmark) return ourMarks.has(s.fwmark);
      const key = ipvsServiceKey(s);
      return lastKeys.has(key) || this.#sent.has(key) || ourVips.has(s.address ?? "");
    };
  }

  /** VIPs our sets hold in the kernel now (what we created on an earlier run). */
  async #ourVips(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const s of this.#last?.sets ?? []) {
      if (/kube-router-svip$/.test(s.name)) s.entries.forEach((e) => out.add(e));
    }
    const names = await ipset.listNames(this.runner);
    for (const f of this.o.families) {
      const n = setName("kube-router-svip", f);
      if (!names.includes(n)) continue;
      for (const set of await ipset.save(this.runner, {}, n)) set.entries.forEach((e) => out.add(e));
    }
    return out;
  }

  /** One `--noflush` payload rewriting our chains of every table, plus the missing jumps. */
  async #iptablesPayload(st: IptablesFamilyState, checkJumps: boolean): Promise<string> {
    const tool = { family: familyName(st.family), backend: this.o.backend };
    const parts: string[] = [];
    for (const [table, chains] of st.tables) {
      const edits: string[][] = [];
      if (checkJumps) {
        for (const j of st.jumps.filter((x) => x.table === table)) {
          const rules = (await iptables.listChain(this.runner, tool, table, j.chain)) ?? [];
          if (!rules.some((r) => r.args.join(" ") === j.args.join(" "))) {
            edits.push(["-I", j.chain, "1", ...j.args]);
          }
        }
      }
      parts.push(iptables.renderNoflush({ table, replaceChains: chains, edits }));
    }
    return parts.join("");
  }
}

/** A failure traced to the Services of the line the tool refused, when it names one. */
function traced(e: unknown, plan: ProxyPlan): never {
  const refused = refusedByLine(e, plan);
  if (refused.length) throw new RefusedObjectsError(refused, { cause: e });
  throw e;
}

/** Temporary set names for the swap script: ours by prefix, ≤ 31 characters. */
export function tempSetName(name: string): string {
  return `krp-tmp-${ipset.base32(sha256(name)).slice(0, 16)}`;
}

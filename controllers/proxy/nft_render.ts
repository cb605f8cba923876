/**
 * nftables mode: the proxy plan as the state of one table per family (`ip kube-router-proxy`,
 * `ip6 kube-router-proxy`), and the `nft -f` transaction from one state to the next.
 *
 * Layout (per family):
 * - map `service-ips`: VIP . l4proto . port → verdict (ClusterIPs, node addresses for NodePorts,
 *   external and LoadBalancer IPs: the same table of virtual services IPVS gets).
 * - map `endpoints`: VIP . l4proto . port . bucket → endpoint ip . port. Most virtual services
 *   jump to a shared chain `spread-<N>[-masq]` that marks for masquerade when asked and
 *   DNATs through `endpoints` with `numgen random mod N` as the bucket. No per-service chain and
 *   no anonymous set: an endpoint change is a handful of element updates, and a 10k-service table
 *   loads in one transaction without the per-anonymous-set cost that grows with their number.
 * - with ClientIP affinity, a chain `svc-…` per virtual service: `ip saddr @aff-… goto ep-…` per
 *   endpoint, then a numgen verdict map to `ep-…` chains that record the client in their `aff-…`
 *   set (dynamic, with the service's timeout) and DNAT.
 * - sets `no-endpoints-tcp` (VIP . port) and `no-endpoints` (VIP . l4proto . port, other
 *   protocols) of services without a ready endpoint → rejected in the filter prerouting and output
 *   hooks, before routing (new connections only): TCP reset, else ICMP port unreachable.
 * - set `hairpin`: endpoint . endpoint pairs of hairpin services → masqueraded in postrouting.
 * - base chains: nat prerouting/output jump `services`; nat postrouting masquerades packets whose
 *   mark has bit 0x4000 (then clears it).
 * - sets `stats-in`, `stats-out`, `stats-conns` (VIP . l4proto . port, one element per virtual
 *   service, each with its own counter): upstream's per-service series (`service_metrics.ts`).
 *   Packets to a VIP (original direction) are counted before DNAT (filter prerouting and output,
 *   priority -110), replies from it after the reverse NAT (filter input and postrouting, priority
 *   110, when their source is the VIP again); a connection is the first packet of a conntrack
 *   entry (not yet confirmed). Loopback input is skipped (counted on output already).
 *
 * Names: `svc-`/`ep-`/`aff-` + 16 hex digits of sha256 over the object's identity, so they are
 * deterministic, fit nft's limits, and everything is ours by living in our table.
 *
 * The state is `kernel/nft`'s typed table; its transactions (whole or delta) come from there too.
 *
 * @module
 */
import * as nft from "../../kernel/nft/mod.ts";
import type { Family } from "./ip.ts";
import { hostPort } from "../../net/ip.ts";
import type { ProxyPlan, RealServer, VirtualService } from "./types.ts";

export const NFT_TABLE = "kube-router-proxy";
/** The mark bit that asks nat postrouting to masquerade (kube-proxy uses the same bit). */
export const MASQ_MARK = 0x4000;

/** Everything our table in one family holds. */
export type NftFamilyState = nft.NftTableSpec;
type NftChainState = nft.NftChainSpec;

export function nftFamily(f: Family): "ip" | "ip6" {
  return f === 4 ? "ip" : "ip6";
}

const hash16 = nft.nftHash16;

function addrType(f: Family): string {
  return f === 4 ? "ipv4_addr" : "ipv6_addr";
}

/** The base chains, sets and rules every table has. */
function skeleton(f: Family): NftFamilyState {
  const a = addrType(f);
  const fam = nftFamily(f);
  // TCP gets a reset (not rate-limited like ICMP errors, and the client sees "refused" at once);
  // other protocols get ICMP port unreachable, as upstream. Two sets, so that no rule mixes
  // `th dport` with a TCP-only statement (nft 1.0.6 cannot re-read such a rule from the kernel).
  const key = `${fam} daddr . meta l4proto . th dport`;
  const countIn = [
    `ct direction original ct status ! confirmed ${key} @stats-conns`,
    `ct direction original ${key} @stats-in`,
  ];
  const countOut = `ct direction reply ${fam} saddr . meta l4proto . th sport @stats-out`;
  const reject = [
    `ct state new ${fam} daddr . tcp dport @no-endpoints-tcp reject with tcp reset`,
    `ct state new ${fam} daddr . meta l4proto . th dport @no-endpoints reject`,
  ];
  const set = (decl: string): nft.NftSetSpec => ({ kind: "set", decl, elements: new Map() });
  const map = (decl: string): nft.NftSetSpec => ({ kind: "map", decl, elements: new Map() });
  const st: NftFamilyState = {
    family: fam,
    name: NFT_TABLE,
    sets: new Map([
      ["service-ips", map(`type ${a} . inet_proto . inet_service : verdict ;`)],
      [
        "endpoints",
        map(
          `typeof ${fam} daddr . meta l4proto . th dport . numgen random mod 1 : ${fam} daddr . th dport ;`,
        ),
      ],
      ["no-endpoints", set(`type ${a} . inet_proto . inet_service ;`)],
      ["no-endpoints-tcp", set(`type ${a} . inet_service ;`)],
      ["hairpin", set(`type ${a} . ${a} ;`)],
      ["l4protos", set("type inet_proto ; elements = { tcp, udp, sctp } ;")],
      ...STATS_SETS.map((n) => [n, set(`type ${a} . inet_proto . inet_service ; counter ;`)] as const),
    ]),
    chains: new Map<string, NftChainState>([
      ["nat-prerouting", {
        decl: "type nat hook prerouting priority dstnat ; policy accept ;",
        rules: ["jump services"],
      }],
      ["nat-output", {
        decl: "type nat hook output priority -100 ; policy accept ;",
        rules: ["jump services"],
      }],
      ["nat-postrouting", {
        decl: "type nat hook postrouting priority srcnat ; policy accept ;",
        rules: [
          `ct status dnat ${fam} saddr . ${fam} daddr @hairpin meta mark set meta mark | ${hex(MASQ_MARK)}`,
          `meta mark & ${hex(MASQ_MARK)} == 0 return`,
          `meta mark set meta mark ^ ${hex(MASQ_MARK)} masquerade fully-random`,
        ],
      }],
      // Rejected before routing: a VIP has no route, so a later hook would see "unreachable" only.
      // (reject in prerouting needs Linux ≥ 5.13, as kube-proxy's nftables mode does.)
      ["filter-prerouting", {
        decl: "type filter hook prerouting priority -110 ; policy accept ;",
        rules: [...countIn, ...reject],
      }],
      ["filter-output", {
        decl: "type filter hook output priority -110 ; policy accept ;",
        rules: [...countIn, ...reject],
      }],
      ["filter-input", {
        decl: "type filter hook input priority 110 ; policy accept ;",
        rules: [`iif lo return`, countOut],
      }],
      ["filter-postrouting", {
        decl: "type filter hook postrouting priority 110 ; policy accept ;",
        rules: [countOut],
      }],
      ["services", { decl: "", rules: [`${fam} daddr . meta l4proto . th dport vmap @service-ips`] }],
    ]),
  };
  for (let n = 1; n <= SPREAD_PRESET; n++) {
    for (const masq of [false, true]) st.chains.set(spreadName(n, masq), spreadChain(fam, n, masq));
  }
  return st;
}

/**
 * Spread chains for 1..SPREAD_PRESET endpoints exist from the first transaction on: nft 1.0.6
 * cannot add a rule that uses the `endpoints` map in a later transaction (it rebuilds the map's
 * typeof from the kernel and rejects `th dport` there), so such a chain appearing later forces a
 * full table replace instead (see `renderIncremental`).
 */
export const SPREAD_PRESET = 256;

function spreadName(n: number, masq: boolean): string {
  return `spread-${n}${masq ? "-masq" : ""}`;
}

function spreadChain(fam: string, n: number, masq: boolean): NftChainState {
  const rules: string[] = [];
  if (masq) rules.push(`meta mark set meta mark | ${hex(MASQ_MARK)}`);
  // The protocol set gives `th dport` its context (a single protocol here would make nft print
  // `tcp dport` in the key and then refuse its own listing in later transactions); a named set,
  // so the table holds no anonymous sets at all.
  rules.push(
    `meta l4proto @l4protos dnat ${fam} to ${fam} daddr . meta l4proto . th dport . numgen random mod ${n} map @endpoints`,
  );
  return { decl: "", rules };
}

const hex = nft.nftHex;
const nftString = (s: string) => nft.nftComment(s);

/** The per-service counter sets (see the module doc). */
export const STATS_SETS = ["stats-in", "stats-out", "stats-conns"] as const;

/** Elements one virtual service contributes to the `service-ips` and `endpoints` maps and the counter sets. */
export interface VsFragment {
  serviceIps: Array<[string, string]>;
  endpoints: Array<[string, string]>;
  /** Its key in each of `STATS_SETS`. */
  stats: string[];
}

/**
 * What one virtual service puts in the two big maps. Pure in the VS, so the applier can diff only
 * the services that changed. Affinity services map to their own `svc-…` chain (made by
 * `renderShared`); the rest to the shared spread chain for their endpoint count.
 */
export function vsFragment(vs: VirtualService): VsFragment {
  const live = vs.realServers.filter((r) => r.weight > 0);
  const proto = vs.protocol.toLowerCase();
  const elem = `${vs.vip} . ${proto} . ${vs.port}`;
  const stats = vs.fwmark > 0 ? [] : [elem];
  if (live.length === 0) return { serviceIps: [], endpoints: [], stats };
  if (vs.persistence > 0) return { serviceIps: [[elem, `goto svc-${hash16(vs.key)}`]], endpoints: [], stats };
  return {
    serviceIps: [[elem, `goto ${spreadName(live.length, vs.masquerade)}`]],
    endpoints: live.map((r, i) => [`${elem} . ${i}`, `${r.ip} . ${r.port}`]),
    stats,
  };
}

/**
 * Everything of one family's table except the elements of `service-ips` and `endpoints`: base
 * chains, spread chains in use, affinity chains and sets, hairpin pairs, reject sets. Small, so
 * it is recomputed and diffed whole on every sync.
 */
export function renderShared(plan: ProxyPlan, f: Family): NftFamilyState {
  const st = skeleton(f);
  const fam = nftFamily(f);
  const noEp = st.sets.get("no-endpoints")!.elements;
  const noEpTcp = st.sets.get("no-endpoints-tcp")!.elements;
  const hairpin = st.sets.get("hairpin")!.elements;
  for (const vs of plan.services) {
    if (vs.family !== f) continue;
    if (!vs.hairpin && vs.persistence === 0 && vs.realServers.length <= SPREAD_PRESET) continue;
    const proto = vs.protocol.toLowerCase();
    const live = vs.realServers.filter((r) => r.weight > 0);
    if (vs.hairpin) { for (const r of live) if (r.local) hairpin.set(`${r.ip} . ${r.ip}`, ""); }
    if (live.length === 0) continue;
    if (vs.persistence === 0) {
      const chain = spreadName(live.length, vs.masquerade);
      if (!st.chains.has(chain)) {
        st.chains.set(chain, { ...spreadChain(fam, live.length, vs.masquerade), mapTarget: true });
      }
      continue;
    }
    const rules: string[] = [];
    if (vs.masquerade) rules.push(`meta mark set meta mark | ${hex(MASQ_MARK)}`);
    const epc = live.map((r) => endpointChain(st, vs, r, fam, proto));
    for (const e of epc) rules.push(`${fam} saddr @${e.set} goto ${e.chain}`);
    rules.push(
      epc.length === 1
        ? `goto ${epc[0].chain}`
        : `numgen random mod ${epc.length} vmap { ${
          epc.map((e, i) => `${i} : goto ${e.chain}`).join(", ")
        } }`,
    );
    st.chains.set(`svc-${hash16(vs.key)}`, {
      decl: `comment ${nftString(`${vs.service} ${vs.kind} ${proto} ${hostPort(vs.vip, vs.port)}`)} ;`,
      rules,
      // `service-ips` elements (diffed outside this state) point here.
      mapTarget: true,
    });
  }
  for (const r of plan.rejects) {
    if (r.family !== f) continue;
    if (r.protocol === "TCP") noEpTcp.set(`${r.vip} . ${r.port}`, "");
    else noEp.set(`${r.vip} . ${r.protocol.toLowerCase()} . ${r.port}`, "");
  }
  return st;
}

/** The desired state of one family's table for a plan (shared part plus every service's elements). */
export function renderState(plan: ProxyPlan, f: Family): NftFamilyState {
  const st = renderShared(plan, f);
  const svcIps = st.sets.get("service-ips")!.elements;
  const eps = st.sets.get("endpoints")!.elements;
  for (const vs of plan.services) {
    if (vs.family !== f) continue;
    const fr = vsFragment(vs);
    for (const [k, v] of fr.serviceIps) svcIps.set(k, v);
    for (const [k, v] of fr.endpoints) eps.set(k, v);
    for (const n of STATS_SETS) for (const k of fr.stats) st.sets.get(n)!.elements.set(k, "");
  }
  return st;
}

function endpointHash(vs: VirtualService, r: RealServer, proto: string): string {
  return hash16(`${vs.service}|${vs.portName}|${proto}|${hostPort(r.ip, r.port)}|${vs.persistence}`);
}

/** Names of the chains and sets one virtual service owns (affinity chains and sets). */
export function serviceObjectNames(vs: VirtualService): string[] {
  if (vs.persistence === 0) return [];
  const proto = vs.protocol.toLowerCase();
  const out = [`svc-${hash16(vs.key)}`];
  for (const r of vs.realServers) {
    if (r.weight <= 0) continue;
    const h = endpointHash(vs, r, proto);
    out.push(`ep-${h}`, `aff-${h}`);
  }
  return out;
}

/**
 * The chain and affinity set of one endpoint of a ClientIP-affinity service. Shared by every
 * virtual service of the same service port (ClusterIP, NodePort, ...) so a client sticks to one
 * endpoint whichever address it uses; the identity includes the timeout so a change makes new ones.
 */
function endpointChain(
  st: NftFamilyState,
  vs: VirtualService,
  r: RealServer,
  fam: string,
  proto: string,
): { chain: string; set: string } {
  const h = endpointHash(vs, r, proto);
  const chain = `ep-${h}`, set = `aff-${h}`;
  if (!st.chains.has(chain)) {
    st.sets.set(set, {
      kind: "set",
      decl: `type ${addrType(vs.family)} ; flags dynamic,timeout ; timeout ${vs.persistence}s ;`,
      elements: new Map(),
    });
    st.chains.set(chain, {
      decl: `comment ${nftString(`${vs.service} ${proto} ${hostPort(r.ip, r.port)}`)} ;`,
      rules: [
        `update @${set} { ${fam} saddr }`,
        `meta l4proto ${proto} dnat ${fam} to ${hostPort(r.ip, r.port)}`,
      ],
    });
  }
  return { chain, set };
}

/** `add|delete element` lines of one of our sets, chunked. */
export function elementLines(verb: "add" | "delete", fam: string, set: string, elems: string[]): string[] {
  return nft.elementLines(verb, { family: fam, name: NFT_TABLE }, set, elems);
}

/**
 * The whole table as one transaction that replaces whatever is there atomically (`add table`
 * first so `delete table` cannot fail when it is missing).
 */
export function renderFull(st: NftFamilyState): string {
  return nft.fullTransaction(st);
}

/** Whether `next` adds a chain that uses the `endpoints` map (see `SPREAD_PRESET`). */
export function needsFullReplace(last: NftFamilyState, next: NftFamilyState): boolean {
  for (const [name, c] of next.chains) {
    if (!last.chains.has(name) && c.rules.some((r) => r.includes("@endpoints"))) return true;
  }
  return false;
}

/**
 * The transaction from `last` to `next` touching only what changed (`kernel/nft`'s delta), with
 * the caller's element updates of the big maps in `extra`. "" when nothing changed; undefined
 * when the change needs a full replace (a new chain using the `endpoints` map: see
 * `SPREAD_PRESET`). Chains no longer wanted are deleted at once here; `NftApplier` defers the
 * ones a map element pointed at (see `kernel/nft/transaction.ts`).
 */
export function renderIncremental(
  last: NftFamilyState,
  next: NftFamilyState,
  extra: { deletes: string[]; adds: string[] } = { deletes: [], adds: [] },
): string | undefined {
  if (needsFullReplace(last, next)) return undefined;
  return nft.deltaTransaction(last, next, { extra });
}

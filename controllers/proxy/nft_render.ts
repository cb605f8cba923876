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
 *
 * Names: `svc-`/`ep-`/`aff-` + 16 hex digits of sha256 over the object's identity, so they are
 * deterministic, fit nft's limits, and everything is ours by living in our table.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Family } from "./ip.ts";
import { hostPort } from "../../net/ip.ts";
import type { ProxyPlan, RealServer, VirtualService } from "./types.ts";

export const NFT_TABLE = "kube-router-proxy";
/** The mark bit that asks nat postrouting to masquerade (kube-proxy uses the same bit). */
export const MASQ_MARK = 0x4000;

export interface NftChainState {
  /** Text inside `{ }` of `add chain` (hook spec or comment); "" for a plain chain. */
  decl: string;
  rules: string[];
}

/** Everything our table in one family holds. */
export interface NftFamilyState {
  family: Family;
  /** Set and map declarations: name → text inside `{ }`. */
  sets: Map<string, string>;
  chains: Map<string, NftChainState>;
  /** Elements of the element-holding sets/maps we manage: set name → element → value ("" for sets). */
  elements: Map<string, Map<string, string>>;
}

/** Element-holding sets and maps, in the order transactions touch them. */
export const ELEMENT_SETS = [
  "service-ips",
  "endpoints",
  "no-endpoints",
  "no-endpoints-tcp",
  "hairpin",
] as const;

function nftFamily(f: Family): "ip" | "ip6" {
  return f === 4 ? "ip" : "ip6";
}

function hash16(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

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
  const reject = [
    `ct state new ${fam} daddr . tcp dport @no-endpoints-tcp reject with tcp reset`,
    `ct state new ${fam} daddr . meta l4proto . th dport @no-endpoints reject`,
  ];
  const st: NftFamilyState = {
    family: f,
    sets: new Map([
      ["service-ips", `type ${a} . inet_proto . inet_service : verdict ;`],
      [
        "endpoints",
        `typeof ${fam} daddr . meta l4proto . th dport . numgen random mod 1 : ${fam} daddr . th dport ;`,
      ],
      ["no-endpoints", `type ${a} . inet_proto . inet_service ;`],
      ["no-endpoints-tcp", `type ${a} . inet_service ;`],
      ["hairpin", `type ${a} . ${a} ;`],
      ["l4protos", "type inet_proto ; elements = { tcp, udp, sctp } ;"],
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
        rules: reject,
      }],
      ["filter-output", { decl: "type filter hook output priority -110 ; policy accept ;", rules: reject }],
      ["services", { decl: "", rules: [`${fam} daddr . meta l4proto . th dport vmap @service-ips`] }],
    ]),
    elements: new Map(ELEMENT_SETS.map((s) => [s, new Map()])),
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

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function nftString(s: string): string {
  return `"${s.replaceAll('"', "'")}"`;
}

/** Elements one virtual service contributes to the `service-ips` and `endpoints` maps. */
export interface VsFragment {
  serviceIps: Array<[string, string]>;
  endpoints: Array<[string, string]>;
}

const EMPTY_FRAGMENT: VsFragment = { serviceIps: [], endpoints: [] };

/**
 * What one virtual service puts in the two big maps. Pure in the VS, so the applier can diff only
 * the services that changed. Affinity services map to their own `svc-…` chain (made by
 * `renderShared`); the rest to the shared spread chain for their endpoint count.
 */
export function vsFragment(vs: VirtualService): VsFragment {
  const live = vs.realServers.filter((r) => r.weight > 0);
  if (live.length === 0) return EMPTY_FRAGMENT;
  const proto = vs.protocol.toLowerCase();
  const elem = `${vs.vip} . ${proto} . ${vs.port}`;
  if (vs.persistence > 0) return { serviceIps: [[elem, `goto svc-${hash16(vs.key)}`]], endpoints: [] };
  return {
    serviceIps: [[elem, `goto ${spreadName(live.length, vs.masquerade)}`]],
    endpoints: live.map((r, i) => [`${elem} . ${i}`, `${r.ip} . ${r.port}`]),
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
  const noEp = st.elements.get("no-endpoints")!;
  const noEpTcp = st.elements.get("no-endpoints-tcp")!;
  const hairpin = st.elements.get("hairpin")!;
  for (const vs of plan.services) {
    if (vs.family !== f) continue;
    if (!vs.hairpin && vs.persistence === 0 && vs.realServers.length <= SPREAD_PRESET) continue;
    const proto = vs.protocol.toLowerCase();
    const live = vs.realServers.filter((r) => r.weight > 0);
    if (vs.hairpin) { for (const r of live) if (r.local) hairpin.set(`${r.ip} . ${r.ip}`, ""); }
    if (live.length === 0) continue;
    if (vs.persistence === 0) {
      const chain = spreadName(live.length, vs.masquerade);
      if (!st.chains.has(chain)) st.chains.set(chain, spreadChain(fam, live.length, vs.masquerade));
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
  const svcIps = st.elements.get("service-ips")!;
  const eps = st.elements.get("endpoints")!;
  for (const vs of plan.services) {
    if (vs.family !== f) continue;
    const fr = vsFragment(vs);
    for (const [k, v] of fr.serviceIps) svcIps.set(k, v);
    for (const [k, v] of fr.endpoints) eps.set(k, v);
  }
  return st;
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
  const id = `${vs.service}|${vs.portName}|${proto}|${hostPort(r.ip, r.port)}|${vs.persistence}`;
  const h = hash16(id);
  const chain = `ep-${h}`, set = `aff-${h}`;
  if (!st.chains.has(chain)) {
    st.sets.set(set, `type ${addrType(st.family)} ; flags dynamic,timeout ; timeout ${vs.persistence}s ;`);
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

const CHUNK = 1000;

export function elementLines(verb: "add" | "delete", fam: string, set: string, elems: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < elems.length; i += CHUNK) {
    out.push(`${verb} element ${fam} ${NFT_TABLE} ${set} { ${elems.slice(i, i + CHUNK).join(", ")} }`);
  }
  return out;
}

function elemText(e: string, v: string): string {
  return v === "" ? e : `${e} : ${v}`;
}

/**
 * The whole table as one transaction that replaces whatever is there atomically (`add table`
 * first so `delete table` cannot fail when it is missing).
 */
export function renderFull(st: NftFamilyState): string {
  const fam = nftFamily(st.family);
  const t = `${fam} ${NFT_TABLE}`;
  const lines = [`add table ${t}`, `delete table ${t}`, `add table ${t}`];
  for (const [name, decl] of st.sets) {
    lines.push(`add ${decl.includes(" : ") ? "map" : "set"} ${t} ${name} { ${decl} }`);
  }
  for (const [name, c] of st.chains) {
    lines.push(c.decl ? `add chain ${t} ${name} { ${c.decl} }` : `add chain ${t} ${name}`);
  }
  for (const [name, c] of st.chains) for (const r of c.rules) lines.push(`add rule ${t} ${name} ${r}`);
  for (const [set, elems] of st.elements) {
    lines.push(...elementLines("add", fam, set, [...elems].map(([e, v]) => elemText(e, v))));
  }
  return lines.join("\n") + "\n";
}

/**
 * The transaction from `last` to `next` touching only what changed: element deletes, new sets,
 * new chains, flush-and-refill of changed chains, element adds, then removal of chains and sets
 * nothing references any more. "" when nothing changed; undefined when the change needs a full
 * replace (a new chain using the `endpoints` map: see `SPREAD_PRESET`).
 */
export function renderIncremental(
  last: NftFamilyState,
  next: NftFamilyState,
  extra: { deletes: string[]; adds: string[] } = { deletes: [], adds: [] },
): string | undefined {
  for (const [name, c] of next.chains) {
    if (!last.chains.has(name) && c.rules.some((r) => r.includes("@endpoints"))) return undefined;
  }
  const fam = nftFamily(next.family);
  const t = `${fam} ${NFT_TABLE}`;
  const del: string[] = [], addSets: string[] = [], addChains: string[] = [], fill: string[] = [];
  const addElems: string[] = [], dropChains: string[] = [], dropSets: string[] = [];
  for (const set of ELEMENT_SETS) {
    const a = last.elements.get(set)!, b = next.elements.get(set)!;
    const gone: string[] = [], come: string[] = [];
    for (const [e, v] of a) if (b.get(e) !== v) gone.push(elemText(e, v));
    for (const [e, v] of b) if (a.get(e) !== v) come.push(elemText(e, v));
    // Deleting a map element takes the key only.
    del.push(...elementLines("delete", fam, set, gone.map((g) => g.split(" : ")[0])));
    addElems.push(...elementLines("add", fam, set, come));
  }
  for (const [name, decl] of next.sets) {
    if (!last.sets.has(name)) addSets.push(`add set ${t} ${name} { ${decl} }`);
  }
  for (const [name, c] of next.chains) {
    const old = last.chains.get(name);
    if (!old) {
      addChains.push(c.decl ? `add chain ${t} ${name} { ${c.decl} }` : `add chain ${t} ${name}`);
      for (const r of c.rules) fill.push(`add rule ${t} ${name} ${r}`);
    } else if (old.rules.join("\n") !== c.rules.join("\n")) {
      fill.push(`flush chain ${t} ${name}`);
      for (const r of c.rules) fill.push(`add rule ${t} ${name} ${r}`);
    }
  }
  const flushGone: string[] = [];
  for (const name of last.chains.keys()) {
    if (!next.chains.has(name)) {
      flushGone.push(`flush chain ${t} ${name}`);
      dropChains.push(`delete chain ${t} ${name}`);
    }
  }
  for (const name of last.sets.keys()) if (!next.sets.has(name)) dropSets.push(`delete set ${t} ${name}`);
  const lines = [
    ...extra.deletes,
    ...del,
    ...addSets,
    ...addChains,
    ...fill,
    ...addElems,
    ...extra.adds,
    ...flushGone,
    ...dropChains,
    ...dropSets,
  ];
  return lines.length ? lines.join("\n") + "\n" : "";
}

/**
 * nftables mode: the proxy plan as the state of one table per family (`ip kube-router-proxy`,
 * `ip6 kube-router-proxy`), and the `nft -f` transaction from one state to the next.
 *
 * Layout (per family):
 * - map `service-ips`: VIP . l4proto . port → `goto svc-…` (ClusterIPs, node addresses for
 *   NodePorts, external and LoadBalancer IPs: the same table of virtual services IPVS gets).
 * - chain `svc-…` per virtual service: marks for masquerade when the plan says so, then either
 *   `dnat to numgen random mod N map { i : ip . port }` (one rule), or, with ClientIP affinity,
 *   `ip saddr @aff-… goto ep-…` per endpoint followed by a numgen verdict map to `ep-…` chains that
 *   record the client in their `aff-…` set (dynamic, with the service's timeout) and DNAT.
 * - set `no-endpoints`: VIP . l4proto . port of services without a ready endpoint → rejected in
 *   the filter prerouting and output hooks, before routing (new connections only).
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

const ELEMENT_SETS = ["service-ips", "no-endpoints", "hairpin"] as const;

function nftFamily(f: Family): "ip" | "ip6" {
  return f === 4 ? "ip" : "ip6";
}

function hash16(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

function addrType(f: Family): string {
  return f === 4 ? "ipv4_addr" : "ipv6_addr";
}

function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The base chains, sets and rules every table has. */
function skeleton(f: Family): NftFamilyState {
  const a = addrType(f);
  const fam = nftFamily(f);
  // TCP gets a reset (not rate-limited like ICMP errors, and the client sees "refused" at once);
  // other protocols get ICMP port unreachable, as upstream.
  const match = `ct state new ${fam} daddr . meta l4proto . th dport @no-endpoints`;
  const reject = [`${match} meta l4proto tcp reject with tcp reset`, `${match} reject`];
  return {
    family: f,
    sets: new Map([
      ["service-ips", `type ${a} . inet_proto . inet_service : verdict ;`],
      ["no-endpoints", `type ${a} . inet_proto . inet_service ;`],
      ["hairpin", `type ${a} . ${a} ;`],
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
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function nftString(s: string): string {
  return `"${s.replaceAll('"', "'")}"`;
}

/** The desired state of one family's table for a plan. */
export function renderState(plan: ProxyPlan, f: Family): NftFamilyState {
  const st = skeleton(f);
  const fam = nftFamily(f);
  const svcIps = st.elements.get("service-ips")!;
  const noEp = st.elements.get("no-endpoints")!;
  const hairpin = st.elements.get("hairpin")!;
  for (const vs of plan.services) {
    if (vs.family !== f) continue;
    const proto = vs.protocol.toLowerCase();
    const elem = `${vs.vip} . ${proto} . ${vs.port}`;
    const live = vs.realServers.filter((r) => r.weight > 0);
    if (vs.hairpin) { for (const r of live) if (r.local) hairpin.set(`${r.ip} . ${r.ip}`, ""); }
    if (live.length === 0) continue;
    const name = `svc-${hash16(`${vs.key}`)}`;
    const rules: string[] = [];
    if (vs.masquerade) rules.push(`meta mark set meta mark | ${hex(MASQ_MARK)}`);
    if (vs.persistence > 0) {
      const eps = live.map((r) => endpointChain(st, vs, r, fam, proto));
      for (const e of eps) rules.push(`${fam} saddr @${e.set} goto ${e.chain}`);
      rules.push(
        eps.length === 1
          ? `goto ${eps[0].chain}`
          : `numgen random mod ${eps.length} vmap { ${
            eps.map((e, i) => `${i} : goto ${e.chain}`).join(", ")
          } }`,
      );
    } else if (live.length === 1) {
      rules.push(`meta l4proto ${proto} dnat ${fam} to ${hostPort(live[0].ip, live[0].port)}`);
    } else {
      rules.push(
        `meta l4proto ${proto} dnat ${fam} to numgen random mod ${live.length} map { ${
          live.map((r, i) => `${i} : ${r.ip} . ${r.port}`).join(", ")
        } }`,
      );
    }
    st.chains.set(name, {
      decl: `comment ${nftString(`${vs.service} ${vs.kind} ${proto} ${hostPort(vs.vip, vs.port)}`)} ;`,
      rules,
    });
    svcIps.set(elem, `goto ${name}`);
  }
  for (const r of plan.rejects) {
    if (r.family === f) noEp.set(`${r.vip} . ${r.protocol.toLowerCase()} . ${r.port}`, "");
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

function elementLines(verb: "add" | "delete", fam: string, set: string, elems: string[]): string[] {
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
    lines.push(`add ${decl.includes(": verdict") ? "map" : "set"} ${t} ${name} { ${decl} }`);
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
 * nothing references any more. "" when nothing changed.
 */
export function renderIncremental(last: NftFamilyState, next: NftFamilyState): string {
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
    ...del,
    ...addSets,
    ...addChains,
    ...fill,
    ...addElems,
    ...flushGone,
    ...dropChains,
    ...dropSets,
  ];
  return lines.length ? lines.join("\n") + "\n" : "";
}

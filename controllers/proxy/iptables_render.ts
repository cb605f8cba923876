/**
 * IPVS mode's iptables and ipset state, pure: the proxy's own chains (rules as argument lists),
 * the jumps into them from built-in chains, and the three upstream ipsets per family.
 *
 * Chains (all ours, recognisable by name):
 * - filter `KUBE-ROUTER-SERVICES` (INPUT jumps here for destinations in `kube-router-svip`):
 *   reject new connections to services without endpoints; with `--ipvs-permit-all`, accept
 *   common ICMP and VIP·proto·port in `kube-router-svip-prt`, reject other ports of a VIP that is
 *   not a node address.
 * - nat `KUBE-ROUTER-POSTROUTING` (POSTROUTING jumps here; upstream writes these rules straight
 *   into POSTROUTING): hairpin first, then the IPVS masquerade SNAT rules.
 * - nat `KUBE-ROUTER-HAIRPIN`: SNAT to the VIP when a local endpoint reaches itself.
 * - mangle `KUBE-ROUTER-DSR` (PREROUTING and OUTPUT jump here): fwmarks of DSR services.
 *
 * @module
 */
import type { DesiredSet } from "../../kernel/ipset/mod.ts";
import { type Family, hostCidr } from "./ip.ts";
import type { ProxyOptions, ProxyPlan } from "./types.ts";

export const CHAIN = {
  services: "KUBE-ROUTER-SERVICES",
  postrouting: "KUBE-ROUTER-POSTROUTING",
  hairpin: "KUBE-ROUTER-HAIRPIN",
  dsr: "KUBE-ROUTER-DSR",
  dsrMss: "KUBE-ROUTER-DSR-MSS",
} as const;

export const OUR_CHAINS: readonly string[] = Object.values(CHAIN);

/** Upstream's set names; IPv6 ones get the `inet6:` prefix as upstream names them. */
export function setName(
  base: "kube-router-local-ips" | "kube-router-svip" | "kube-router-svip-prt",
  f: Family,
) {
  return f === 6 ? `inet6:${base}` : base;
}

/** Every set name the proxy may create (both families), and the temporary names it swaps through. */
export function isOurSet(name: string): boolean {
  return /^(inet6:)?kube-router-(local-ips|svip|svip-prt)$/.test(name) || name.startsWith("krp-tmp-");
}

export function isOurChain(name: string): boolean {
  return OUR_CHAINS.includes(name);
}

const COMMENT = ["-m", "comment", "--comment", "kube-router proxy"];

/** A jump from a built-in chain into ours: inserted at position 1 when missing. */
export interface Jump {
  table: string;
  chain: string;
  args: string[];
}

export interface IptablesFamilyState {
  family: Family;
  /** table → chain → rules (argument lists after `-A CHAIN`). */
  tables: Map<string, Map<string, string[][]>>;
  jumps: Jump[];
}

/** The proxy's iptables state for one family. */
export function iptablesState(plan: ProxyPlan, options: ProxyOptions, f: Family): IptablesFamilyState {
  const services: string[][] = [];
  const icmp = f === 4 ? "icmp" : "icmpv6";
  const rejectWith = f === 4 ? "icmp-port-unreachable" : "icmp6-port-unreachable";
  for (const r of plan.rejects) {
    if (r.family !== f) continue;
    const p = r.protocol.toLowerCase();
    services.push([
      "-d",
      hostCidr(r.vip),
      "-p",
      p,
      "-m",
      p,
      "--dport",
      String(r.port),
      "-m",
      "conntrack",
      "--ctstate",
      "NEW",
      "-m",
      "comment",
      "--comment",
      `${r.service} has no endpoints`,
      "-j",
      "REJECT",
      "--reject-with",
      p === "tcp" ? "tcp-reset" : rejectWith,
    ]);
  }
  if (options.ipvsPermitAll) {
    const types = f === 4 ? ["echo-request", "destination-unreachable", "time-exceeded"] : [
      "echo-request",
      "destination-unreachable",
      "time-exceeded",
      "neighbor-solicitation",
      "neighbor-advertisement",
      "echo-reply",
    ];
    for (const t of types) {
      services.push(["-p", icmp, "-m", icmp, f === 4 ? "--icmp-type" : "--icmpv6-type", t, "-j", "ACCEPT"]);
    }
    services.push([
      "-m",
      "set",
      "--match-set",
      setName("kube-router-svip-prt", f),
      "dst,dst",
      "-j",
      "ACCEPT",
    ]);
    services.push([
      "-m",
      "set",
      "!",
      "--match-set",
      setName("kube-router-local-ips", f),
      "dst",
      "-j",
      "REJECT",
      "--reject-with",
      rejectWith,
    ]);
  }

  const nodeIp = plan.nodeIps[f];
  const hairpin: string[][] = [];
  for (const vs of plan.services) {
    if (vs.family !== f || !vs.hairpin || vs.fwmark) continue;
    for (const r of vs.realServers) {
      if (!r.local) continue;
      hairpin.push([
        "-s",
        hostCidr(r.ip),
        "-d",
        hostCidr(r.ip),
        "-m",
        "ipvs",
        "--vaddr",
        hostCidr(vs.vip),
        "--vport",
        String(vs.port),
        "-j",
        "SNAT",
        "--to-source",
        vs.vip,
      ]);
    }
  }
  const post: string[][] = [];
  if (hairpin.length) post.push(["-m", "ipvs", "--ipvs", "--vdir", "ORIGINAL", "-j", CHAIN.hairpin]);
  if (nodeIp) {
    const snat = ["-j", "SNAT", "--to-source", nodeIp, "--random-fully"];
    const ipvsMasq = ["-m", "ipvs", "--ipvs", "--vdir", "ORIGINAL", "--vmethod", "MASQ"];
    if (options.masqueradeAll) post.push([...ipvsMasq, ...COMMENT, ...snat]);
    else {
      for (const c of plan.podCIDRs[f]) {
        post.push([...ipvsMasq, "!", "-s", c, "!", "-d", c, ...COMMENT, ...snat]);
      }
      // External traffic with policy Cluster may be served by another node: SNAT so replies return here.
      for (const vs of plan.services) {
        if (vs.family !== f || !vs.masquerade || vs.fwmark || vs.kind === "clusterip") continue;
        post.push([
          "-m",
          "ipvs",
          "--vaddr",
          hostCidr(vs.vip),
          "--vport",
          String(vs.port),
          "--vdir",
          "ORIGINAL",
          "--vmethod",
          "MASQ",
          ...snat,
        ]);
      }
    }
  }
  const dsr: string[][] = [];
  for (const m of plan.dsrMarks) {
    if (m.family !== f) continue;
    const p = m.protocol.toLowerCase();
    dsr.push([
      "-d",
      hostCidr(m.vip),
      "-p",
      p,
      "-m",
      p,
      "--dport",
      String(m.port),
      "-j",
      "MARK",
      "--set-xmark",
      `0x${m.fwmark.toString(16)}/0xffffffff`,
    ]);
  }
  // DSR replies leave the pod through its tunnel with the VIP as source and come in on
  // kube-bridge; clamp the SYN-ACK's MSS so the client's segments fit the IPIP encapsulation
  // (upstream: MTU − 60 for IPv4, − 100 for IPv6). Own chain: `-i` is meaningless from OUTPUT.
  const mss: string[][] = [];
  const seenMss = new Set<string>();
  for (const m of plan.dsrMarks) {
    if (m.family !== f || m.protocol !== "TCP") continue;
    const k = `${m.vip}:${m.port}`;
    if (seenMss.has(k)) continue;
    seenMss.add(k);
    mss.push([
      "-s",
      hostCidr(m.vip),
      "-i",
      "kube-bridge",
      "-p",
      "tcp",
      "-m",
      "tcp",
      "--sport",
      String(m.port),
      "--tcp-flags",
      "SYN,RST",
      "SYN",
      "-j",
      "TCPMSS",
      "--set-mss",
      String(plan.nodeMtu - (f === 4 ? 60 : 100)),
    ]);
  }
  return {
    family: f,
    tables: new Map<string, Map<string, string[][]>>([
      ["filter", new Map<string, string[][]>([[CHAIN.services, services]])],
      ["nat", new Map<string, string[][]>([[CHAIN.postrouting, post], [CHAIN.hairpin, hairpin]])],
      ["mangle", new Map<string, string[][]>([[CHAIN.dsr, dsr], [CHAIN.dsrMss, mss]])],
    ]),
    jumps: [
      {
        table: "filter",
        chain: "INPUT",
        args: [
          "-m",
          "set",
          "--match-set",
          setName("kube-router-svip", f),
          "dst",
          ...COMMENT,
          "-j",
          CHAIN.services,
        ],
      },
      { table: "nat", chain: "POSTROUTING", args: [...COMMENT, "-j", CHAIN.postrouting] },
      { table: "mangle", chain: "PREROUTING", args: [...COMMENT, "-j", CHAIN.dsr] },
      { table: "mangle", chain: "OUTPUT", args: [...COMMENT, "-j", CHAIN.dsr] },
      { table: "mangle", chain: "PREROUTING", args: [...COMMENT, "-j", CHAIN.dsrMss] },
    ],
  };
}

/** The three upstream ipsets of one family, as the firewall module's swap script wants them. */
export function ipsetState(plan: ProxyPlan, f: Family): DesiredSet[] {
  const fam = f === 4 ? "inet" : "inet6";
  const opts = ["family", fam, "hashsize", "1024", "maxelem", "65536"];
  return [
    {
      name: setName("kube-router-local-ips", f),
      type: "hash:ip",
      options: opts,
      entries: plan.sets.localIps[f],
    },
    { name: setName("kube-router-svip", f), type: "hash:ip", options: opts, entries: plan.sets.svip[f] },
    {
      name: setName("kube-router-svip-prt", f),
      type: "hash:ip,port",
      options: opts,
      entries: plan.sets.svipPort[f],
    },
  ];
}

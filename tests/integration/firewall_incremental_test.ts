/**
 * Incremental applies end where a fresh full apply starts: a random sequence of cluster changes
 * (pods and labels, policies, named ports, ipBlocks) is applied one sync at a time in namespace A,
 * only the last state is applied from scratch in namespace B, and the kernels must then hold the
 * same chains, rules and set contents (iptables: `iptables-save` + `ipset save`; nftables:
 * `nft -j list table`). Namespaces `fwinc…`; addresses 10.201.1.0/24 and 198.51.100.0/24 in rules only.
 */
import assert from "node:assert/strict";
import { IptablesApplier } from "../../controllers/firewall/iptables_apply.ts";
import { NftApplier } from "../../controllers/firewall/nft_apply.ts";
import { planFirewall } from "../../controllers/firewall/plan.ts";
import { fwOptions, node, ns, pod, policy, sel, snapshot } from "../../controllers/firewall/testing.ts";
import type { NetworkPolicyInfo, PodInfo } from "../../watch/types.ts";
import { createNetns, type TestNetns } from "./firewall_netns_helper.ts";

let seed = Number(Deno.env.get("FW_INC_SEED") ?? 7);
const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
const pick = <T>(a: readonly T[]) => a[Math.floor(rnd() * a.length)];

function randomCluster() {
  const pods: PodInfo[] = [];
  const n = 3 + Math.floor(rnd() * 8);
  for (let i = 0; i < n; i++) {
    pods.push(
      pod(pick(["a", "b"]), `p${i}`, [`10.201.1.${2 + Math.floor(rnd() * 60)}`, `2001:db8:1::${i + 2}`], {
        app: pick(["web", "cli", "db"]),
      }, { ports: [["http", pick([80, 8080]), "TCP"]], nodeName: pick(["node-a", "node-a", "node-b"]) }),
    );
  }
  // Unique IPs per pod (the generator may repeat).
  const seen = new Set<string>();
  const uniq = pods.filter((p) => !seen.has(p.podIPs[0]) && seen.add(p.podIPs[0]));
  const policies: NetworkPolicyInfo[] = [];
  const m = Math.floor(rnd() * 4);
  for (let k = 0; k < m; k++) {
    policies.push(policy(pick(["a", "b"]), `np${Math.floor(rnd() * 3)}`, {
      podSelector: sel(pick<Record<string, string>>([{}, { app: "web" }, { app: "db" }])),
      policyTypes: pick([["Ingress"], ["Egress"], ["Ingress", "Egress"]]) as Array<"Ingress" | "Egress">,
      ingress: [{
        peers: pick([[], [{ podSelector: sel({ app: "cli" }) }], [{
          ipBlock: { cidr: "198.51.100.0/24", except: pick([[], ["198.51.100.128/25"]]) },
        }]]),
        ports: pick([[], [{ protocol: "TCP" as const, port: "http" }], [{
          protocol: "TCP" as const,
          port: 80,
          endPort: 90,
        }]]),
      }],
      egress: [{ peers: pick([[], [{ namespaceSelector: sel() }]]), ports: [] }],
    }));
  }
  const byKey = new Map(policies.map((p) => [`${p.namespace}/${p.name}`, p]));
  return snapshot({
    nodes: [node("node-a", "192.0.2.1", ["10.201.1.0/24"])],
    namespaces: [ns("a"), ns("b")],
    pods: uniq,
    policies: [...byKey.values()],
  });
}

async function iptablesState(n: TestNetns): Promise<string> {
  const save = await n.sh("iptables-nft-save -t filter; ip6tables-nft-save -t filter");
  // Group rules by chain and sort the chains (their listing order is creation order, which
  // differs between incremental and fresh); rule order inside a chain is kept.
  const byChain = new Map<string, string[]>();
  for (const l of save.split("\n")) {
    if (!l.startsWith("-A") && !l.startsWith(":")) continue;
    const chain = l.startsWith(":") ? l.slice(1).split(" ")[0] : l.split(" ")[1];
    if (!byChain.has(chain)) byChain.set(chain, []);
    if (l.startsWith("-A")) byChain.get(chain)!.push(l);
  }
  const rules = [...byChain.keys()].sort().flatMap((c) => [`chain ${c}`, ...byChain.get(c)!]);
  const sets = (await n.sh("ipset save")).split("\n").filter((l) =>
    l.startsWith("add ") || l.startsWith("create ")
  )
    .map((l) => l.replace(/ (bucketsize|initval|hashsize|maxelem) \S+/g, ""));
  return [...rules, ...sets.sort()].join("\n");
}

async function nftState(n: TestNetns): Promise<string> {
  const out: string[] = [];
  for (const t of ["ip kube-router-filter-ipv4", "ip6 kube-router-filter-ipv6"]) {
    const doc = JSON.parse(await n.sh(`nft -j list table ${t}`)) as {
      nftables: Record<string, Record<string, unknown>>[];
    };
    for (const item of doc.nftables) {
      if (item.rule) {
        out.push(`rule ${item.rule.chain} ${JSON.stringify(item.rule.expr)} ${item.rule.comment ?? ""}`);
      }
      if (item.chain) out.push(`chain ${item.chain.name} ${item.chain.hook ?? ""}`);
      if (item.set) {
        const elems = ((item.set.elem as unknown[]) ?? []).map((e) => JSON.stringify(e)).sort();
        out.push(`set ${item.set.name} ${JSON.stringify(item.set.type)} ${elems.join(",")}`);
      }
    }
  }
  // Chains are listed in creation order, which differs between incremental and fresh: sort.
  return out.sort().join("\n");
}

for (const kind of ["iptables", "nftables"] as const) {
  Deno.test(`incremental ${kind} applies converge to what a fresh apply of the last state gives`, async () => {
    const a = await createNetns("inc");
    const b = await createNetns("inc");
    try {
      const mk = (n: TestNetns) =>
        kind === "iptables" ? new IptablesApplier(n.runner, { backend: "nft" }) : new NftApplier(n.runner);
      const inc = mk(a);
      const opts = fwOptions({ enableIpv6: true });
      let last = randomCluster();
      for (let i = 0; i < 25; i++) {
        last = randomCluster();
        await inc.apply(planFirewall(last, opts, "node-a"));
      }
      // End on a state with policies so the comparison covers policy chains and sets.
      const hasPolicyChain = (c: typeof last) =>
        [...planFirewall(c, opts, "node-a").families[0].chains.keys()].some((n) =>
          /^KUBE-NWPLCY-[A-Z2-7]{16}$/.test(n)
        );
      while (!hasPolicyChain(last)) last = randomCluster();
      await inc.apply(planFirewall(last, opts, "node-a"));
      await mk(b).apply(planFirewall(last, opts, "node-a"));
      const state = kind === "iptables" ? iptablesState : nftState;
      const [got, want] = [await state(a), await state(b)];
      if (got !== want) {
        await Deno.writeTextFile(`/tmp/fwinc-${kind}-incremental.txt`, got);
        await Deno.writeTextFile(`/tmp/fwinc-${kind}-fresh.txt`, want);
      }
      assert.ok(
        got === want,
        `kernels differ: diff /tmp/fwinc-${kind}-incremental.txt /tmp/fwinc-${kind}-fresh.txt`,
      );
      assert.ok(
        want.includes("KUBE-ROUTER-FORWARD") && /KUBE-NWPLCY-[A-Z2-7]{16}/.test(want),
        "vacuous comparison",
      );
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });
}

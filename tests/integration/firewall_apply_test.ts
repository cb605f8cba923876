/**
 * The firewall's appliers against the real kernel with real packets, in a one-node lab
 * (namespaces `fw-<id>-*`): node-1 10.250.0.1, pod CIDR 10.251.2.0/24 on kube-bridge; pods web
 * 10.251.2.2 (tcp 80, 8080), cli 10.251.2.3, other 10.251.2.4. All commands run inside the lab's
 * node namespace.
 */
import assert from "node:assert/strict";
import { CommandRunner, type ExecOptions, type ExecResult, type Runner } from "../../kernel/exec.ts";
import { createLab, type Lab } from "../fixtures/lab.ts";
import { cleanupIptables, IptablesApplier } from "../../controllers/firewall/iptables_apply.ts";
import { cleanupNft, NftApplier } from "../../controllers/firewall/nft_apply.ts";
import { planFirewall } from "../../controllers/firewall/plan.ts";
import { fwOptions, node, ns, pod, policy, sel, snapshot } from "../../controllers/firewall/testing.ts";
import type { IptablesBackend } from "../../kernel/iptables/mod.ts";
import type { FirewallPlan } from "../../controllers/firewall/plan.ts";

/** Counts commands that would change the kernel. */
class CountingRunner implements Runner {
  mutating: string[][] = [];
  constructor(readonly inner: Runner) {}
  run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    if (!options.readOnly) this.mutating.push([...argv]);
    return this.inner.run(argv, options);
  }
}

async function setup(): Promise<
  { lab: Lab; runner: CountingRunner; nodeNs: string; ips: Record<string, string> }
> {
  const lab = await createLab({ nodes: [{ name: "node-1" }], prefix: "fw" });
  const ips: Record<string, string> = {};
  for (const name of ["web", "cli", "other"]) ips[name] = (await lab.addPod("node-1", { name })).ip;
  await lab.serve("web", { tcp: [80, 8080], udp: [53] });
  const nodeNs = lab.node("node-1").netns;
  return { lab, runner: new CountingRunner(new CommandRunner(nodeNs)), nodeNs, ips };
}

function clusterPlan(lab: Lab, ips: Record<string, string>, withPolicy = true): FirewallPlan {
  const n = lab.node("node-1");
  const snap = snapshot({
    nodes: [node("node-1", n.ip, [n.podCidr])],
    namespaces: [ns("default")],
    pods: [
      pod("default", "web", ips.web, { app: "web" }, { nodeName: "node-1", hostIP: n.ip }),
      pod("default", "cli", ips.cli, { app: "cli" }, { nodeName: "node-1", hostIP: n.ip }),
      pod("default", "other", ips.other, { app: "other" }, { nodeName: "node-1", hostIP: n.ip }),
    ],
    policies: withPolicy
      ? [policy("default", "web-from-cli", {
        podSelector: sel({ app: "web" }),
        ingress: [{ peers: [{ podSelector: sel({ app: "cli" }) }], ports: [{ protocol: "TCP", port: 80 }] }],
      })]
      : [],
  });
  return planFirewall(snap, fwOptions(), "node-1");
}

async function expectPolicy(
  lab: Lab,
  ips: Record<string, string>,
  enforced: boolean,
  step: string,
): Promise<void> {
  const probes: Array<[string, number, boolean]> = [["cli", 80, true], ["cli", 8080, !enforced], [
    "other",
    80,
    !enforced,
  ]];
  for (const [from, port, want] of probes) {
    const r = await lab.tcpProbe(from, ips.web, port, 700);
    assert.equal(
      r.status === "connected",
      want,
      `${step}: ${from} → web:${port} ${r.status} ${r.error ?? ""}`,
    );
  }
}

for (const backend of ["nft", "legacy"] as IptablesBackend[]) {
  Deno.test({
    name: `iptables applier (${backend}): enforce, no-op resync, repair, restart, atomic failure, cleanup`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const { lab, runner, nodeNs, ips } = await setup();
      const ipt = (...a: string[]) => new CommandRunner(nodeNs).run([`iptables-${backend}`, "-w", ...a]);
      const save = async () =>
        (await new CommandRunner(nodeNs).run([`iptables-${backend}-save`, "-t", "filter"])).stdout.replace(
          /^#.*\n/gm,
          "",
        ).replace(/\[\d+:\d+\]/g, "");
      try {
        await expectPolicy(lab, ips, false, "step 1");
        const applier = new IptablesApplier(runner, { backend });
        const plan = clusterPlan(lab, ips);
        await applier.apply(plan);
        await expectPolicy(lab, ips, true, "step 2");

        // An unchanged sync runs nothing that changes the kernel.
        runner.mutating = [];
        const stats = await applier.apply(clusterPlan(lab, ips));
        assert.deepEqual(runner.mutating, []);
        assert.equal(stats.restores, 0);

        // Someone flushes our FORWARD chain: verify notices, apply repairs it.
        await ipt("-F", "KUBE-ROUTER-FORWARD");
        await expectPolicy(lab, ips, false, "step 3");
        const drift = await applier.verify();
        assert.ok(drift.includes("ipv4:KUBE-ROUTER-FORWARD"), drift.join());
        await applier.apply(plan);
        await expectPolicy(lab, ips, true, "step 4");

        // Duplicate jumps (upstream #1676) and a restart: exactly one jump, at position 1.
        await ipt("-A", "INPUT", "-j", "KUBE-ROUTER-INPUT");
        await ipt("-I", "FORWARD", "1", "-s", "192.0.2.9", "-j", "ACCEPT");
        const restarted = new IptablesApplier(runner, { backend });
        await restarted.apply(plan);
        for (const [builtin, ours] of [["INPUT", "KUBE-ROUTER-INPUT"], ["FORWARD", "KUBE-ROUTER-FORWARD"]]) {
          const rules = (await ipt("-S", builtin)).stdout.split("\n").filter((l) => l.startsWith("-A"));
          assert.equal(rules.filter((l) => l.endsWith(`-j ${ours}`)).length, 1, rules.join("\n"));
          assert.match(rules[0], new RegExp(`-j ${ours}$`));
        }
        await expectPolicy(lab, ips, true, "step 5");

        // A transaction the kernel rejects leaves everything as it was.
        const before = await save();
        const bad = clusterPlan(lab, ips, false);
        bad.families[0].chains.get("KUBE-ROUTER-FORWARD")!.unshift({
          matches: [{ k: "l4", proto: "tcp", dport: "99999" }],
          verdict: { k: "accept" },
        });
        await assert.rejects(restarted.apply(bad), /99999/);
        assert.equal(await save(), before);
        await expectPolicy(lab, ips, true, "step 6");
        // ... and the applier recovers on the next good plan.
        await restarted.apply(clusterPlan(lab, ips, false));
        await expectPolicy(lab, ips, false, "step 7");
        await restarted.apply(plan);
        await expectPolicy(lab, ips, true, "step 8");

        // Cleanup removes ours only.
        await ipt("-N", "FOREIGN");
        await ipt("-A", "FOREIGN", "-j", "RETURN");
        await ipt("-A", "FORWARD", "-j", "FOREIGN");
        await new CommandRunner(nodeNs).run(["ipset", "create", "foreign", "hash:ip"]);
        await cleanupIptables(new CommandRunner(nodeNs), backend, ["ipv4", "ipv6"]);
        await cleanupIptables(new CommandRunner(nodeNs), backend, ["ipv4", "ipv6"]); // idempotent
        const after = await save();
        assert.doesNotMatch(after, /KUBE-/);
        assert.match(after, /-A FORWARD -j FOREIGN/);
        assert.match(after, /-A FORWARD -s 192.0.2.9\/32 -j ACCEPT/);
        const sets = (await new CommandRunner(nodeNs).run(["ipset", "list", "-n"])).stdout.trim();
        assert.equal(sets, "foreign");
        await expectPolicy(lab, ips, false, "step 9");
      } finally {
        await lab.teardown();
      }
    },
  });
}

Deno.test({
  name: "nft applier: enforce, no-op resync, repair, cleanup; removes the iptables backend's state",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { lab, runner, nodeNs, ips } = await setup();
    const sh = (s: string) => new CommandRunner(nodeNs).run(["sh", "-c", s]);
    try {
      const applier = new NftApplier(runner);
      const plan = clusterPlan(lab, ips);
      await applier.apply(plan);
      await expectPolicy(lab, ips, true, "step 10");
      runner.mutating = [];
      await applier.apply(clusterPlan(lab, ips));
      assert.deepEqual(runner.mutating, []);
      await sh("nft flush chain ip kube-router-filter-ipv4 KUBE-ROUTER-FORWARD");
      await expectPolicy(lab, ips, false, "step 11");
      assert.deepEqual(await applier.verify(), ["ip kube-router-filter-ipv4"]);
      await applier.apply(plan);
      await expectPolicy(lab, ips, true, "step 12");
      await sh("nft add table ip foreign");
      assert.equal(await cleanupNft(new CommandRunner(nodeNs)), 1);
      const tables = (await sh("nft list tables")).stdout;
      assert.doesNotMatch(tables, /kube-router/);
      assert.match(tables, /table ip foreign/);
      await expectPolicy(lab, ips, false, "step 13");
    } finally {
      await lab.teardown();
    }
  },
});

for (const kind of ["iptables", "nftables"] as const) {
  Deno.test({
    name: `dual-stack enforcement and --netpol-default-deny with real packets (${kind})`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const lab = await createLab({ nodes: [{ name: "node-1" }], prefix: "fw", ipv6: true });
      try {
        const pods: Record<string, { ip: string; ip6: string }> = {};
        for (const name of ["web", "cli", "other", "newpod"]) {
          const p = await lab.addPod("node-1", { name });
          pods[name] = { ip: p.ip, ip6: p.ip6! };
        }
        await lab.serve("web", { tcp: [80, 8080] });
        await lab.serve("cli", { tcp: [80] });
        const n = lab.node("node-1");
        const mk = (name: string, labels: Record<string, string>) =>
          pod("default", name, [pods[name].ip, pods[name].ip6], labels, { nodeName: "node-1", hostIP: n.ip });
        const snap = snapshot({
          nodes: [node("node-1", n.ip, [n.podCidr, n.podCidr6!])],
          namespaces: [ns("default")],
          // newpod is running but not yet known to the agent: default deny must hold it.
          pods: [mk("web", { app: "web" }), mk("cli", { app: "cli" }), mk("other", { app: "other" })],
          policies: [policy("default", "web-from-cli", {
            podSelector: sel({ app: "web" }),
            ingress: [{
              peers: [{ podSelector: sel({ app: "cli" }) }],
              ports: [{ protocol: "TCP", port: 80 }],
            }],
          })],
        });
        const plan = planFirewall(snap, fwOptions({ enableIpv6: true, netpolDefaultDeny: true }), "node-1");
        assert.deepEqual(plan.problems, []);
        const runner = new CommandRunner(n.netns);
        const applier = kind === "iptables"
          ? new IptablesApplier(runner, { backend: "nft" })
          : new NftApplier(runner);
        await applier.apply(plan);
        const table: string[] = [];
        for (const fam of ["ip", "ip6"] as const) {
          for (
            const [from, to, port, want] of [
              ["cli", "web", 80, true],
              ["cli", "web", 8080, false],
              ["other", "web", 80, false],
              ["other", "cli", 80, true],
              ["newpod", "cli", 80, false],
              ["cli", "newpod", 80, false],
            ] as const
          ) {
            const r = await lab.tcpProbe(from, pods[to][fam], port, 700);
            const got = r.status === "connected";
            if (got !== want) table.push(`${fam} ${from} -> ${to}:${port} want ${want} got ${r.status}`);
          }
        }
        assert.deepEqual(table, []);
      } finally {
        await lab.teardown();
      }
    },
  });
}

/**
 * The firewall controller in a namespace `fwctl…` of its own (no traffic; addresses 10.201.1.0/24
 * and 192.0.2.1 appear in rules only): an unchanged sync runs no mutating command, switching
 * backends removes the other backend's state, bad input is logged once, and `firewallCleanup`
 * removes everything ours and nothing else.
 */
import assert from "node:assert/strict";
import { defaultOptions } from "../../options/mod.ts";
import { CommandRunner, type ExecOptions, type ExecResult, type Runner } from "../../kernel/exec.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import type { Logger } from "../../observe/log.ts";
import type { ControllerContext } from "../../controllers/controller.ts";
import { createFirewallController, firewallCleanup } from "../../controllers/firewall/mod.ts";
import { node, ns, pod, policy, sel, snapshot } from "../../controllers/firewall/testing.ts";
import { createNetns } from "./firewall_netns_helper.ts";

class CountingRunner implements Runner {
  mutating: string[] = [];
  constructor(readonly inner: Runner) {}
  run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    if (!options.readOnly) this.mutating.push(argv.join(" "));
    return this.inner.run(argv, options);
  }
}

function fakeLog(lines: string[]): Logger {
  const rec = (level: string) => (msg: string, props?: Record<string, unknown>) => {
    lines.push(`${level} ${msg.replace(/\{(\w+)\}/g, (_, k) => String(props?.[k]))}`);
  };
  return { info: rec("I"), warn: rec("W"), error: rec("E"), debug: rec("D") } as unknown as Logger;
}

const snap = (revision: number) =>
  snapshot({
    revision,
    nodes: [node("node-a", "192.0.2.1", ["10.201.1.0/24"])],
    namespaces: [ns("a")],
    pods: [pod("a", "web", "10.201.1.2", { app: "web" }), pod("a", "cli", "10.201.1.3", { app: "cli" })],
    policies: [policy("a", "p", {
      podSelector: sel({ app: "web" }),
      ingress: [{
        peers: [{ podSelector: sel({ app: "cli" }) }, { ipBlock: { cidr: "10.1.2.3/99", except: [] } }],
        ports: [],
      }],
    })],
  });

Deno.test("firewall controller: no-op syncs, backend switch, bad input logged once, cleanup", async () => {
  const netns = await createNetns("ctl");
  const lines: string[] = [];
  try {
    const runner = new CountingRunner(new CommandRunner(netns.name));
    const metrics = new MetricsRegistry();
    const ctx = (nft: boolean): ControllerContext => ({
      options: { ...defaultOptions(), useNftablesForNetpol: nft },
      runner,
      nodeName: "node-a",
      log: fakeLog(lines),
      metrics,
      dryRun: false,
    });
    const signal = new AbortController().signal;
    const c = createFirewallController(ctx(false));
    await c.sync(snap(1), signal);
    assert.ok(runner.mutating.some((m) => m.includes("iptables-nft-restore")), runner.mutating.join("\n"));
    runner.mutating = [];
    await c.sync(snap(2), signal); // new revision, same content
    await c.sync(snap(2), signal); // periodic resync: verify only
    assert.deepEqual(runner.mutating, []);
    const exposed = metrics.render();
    for (const name of ["iptables_sync_time", "iptables_v4_restore_time", "policy_ipset_v4_restore_time"]) {
      assert.match(exposed, new RegExp(`kube_router_controller_${name}_count [1-9]`), name);
    }
    assert.match(exposed, /kube_router_controller_policy_chains \d+/);
    assert.equal(lines.filter((l) => l.includes("10.1.2.3/99")).length, 1, lines.join("\n"));
    assert.match(
      lines.find((l) => l.includes("10.1.2.3/99"))!,
      /a\/p: spec\.ingress\[0\]\.from\[1\]\.ipBlock\.cidr/,
    );

    // Switch to nftables: the iptables chains and sets go away, the nft table appears.
    const n = createFirewallController(ctx(true));
    await n.sync(snap(3), signal);
    const save = await netns.sh("iptables-nft-save -t filter; ipset list -n; nft list tables");
    assert.doesNotMatch(save, /KUBE-|:INPUT.*\n-A INPUT/);
    assert.match(save, /table ip kube-router-filter-ipv4/);

    // Back to iptables; then cleanup with foreign state around.
    await createFirewallController(ctx(false)).sync(snap(4), signal);
    assert.doesNotMatch(await netns.sh("nft list tables"), /kube-router/);
    await netns.sh(
      "iptables-nft -N FOREIGN && iptables-nft -I INPUT -j FOREIGN && ipset create foreign hash:ip && nft add table ip foreign",
    );
    await firewallCleanup(ctx(false));
    await firewallCleanup(ctx(false));
    const after = await netns.sh("iptables-nft-save -t filter; ipset list -n; nft list tables");
    assert.doesNotMatch(after, /KUBE-|kube-router/);
    assert.match(after, /-A INPUT -j FOREIGN/);
    assert.match(after, /^foreign$/m);
    assert.match(after, /table ip foreign/);
  } finally {
    await netns.dispose();
  }
});

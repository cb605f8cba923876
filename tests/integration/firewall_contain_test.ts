/**
 * A batch the kernel tool refuses despite validation (here: a stale ipset of another type under
 * one of our set names, as an older agent version could leave) is contained: the refused line is
 * traced to its NetworkPolicy, that policy is left out as a deny (its pod stays isolated), every
 * other object is applied, and the refusal is logged and counted. Before containment, the whole
 * sync failed and the node's firewall stayed stale. Namespace `fwcnt…` of its own, no traffic
 * (addresses 10.201.1.0/24, 192.0.2.1, 172.16.0.0/12 appear in rules only).
 */
import assert from "node:assert/strict";
import { defaultOptions } from "../../options/mod.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import type { Logger } from "../../observe/log.ts";
import { createFirewallController } from "../../controllers/firewall/mod.ts";
import { planFirewall } from "../../controllers/firewall/plan.ts";
import { fwOptions, node, ns, pod, policy, sel, snapshot } from "../../controllers/firewall/testing.ts";
import { createNetns } from "./firewall_netns_helper.ts";

function recordingLog(lines: string[]): Logger {
  const rec = (level: string) => (msg: string, props?: Record<string, unknown>) => {
    lines.push(`${level} ${msg.replace(/\{(\w+)\}/g, (_, k) => String(props?.[k]))}`);
  };
  return { info: rec("I"), warn: rec("W"), error: rec("E"), debug: rec("D") } as unknown as Logger;
}

const snap = snapshot({
  revision: 1,
  nodes: [node("node-a", "192.0.2.1", ["10.201.1.0/24"])],
  namespaces: [ns("a")],
  pods: [
    pod("a", "web", "10.201.1.2", { app: "web" }),
    pod("a", "db", "10.201.1.3", { app: "db" }),
    pod("a", "open", "10.201.1.4", { app: "open" }),
  ],
  policies: [
    policy("a", "web", {
      podSelector: sel({ app: "web" }),
      ingress: [{ peers: [{ ipBlock: { cidr: "172.16.0.0/12", except: [] } }], ports: [] }],
    }),
    policy("a", "db", {
      podSelector: sel({ app: "db" }),
      ingress: [{ peers: [{ ipBlock: { cidr: "172.20.0.0/16", except: [] } }], ports: [] }],
    }),
  ],
});

Deno.test("firewall: a line the tool refuses leaves out only its policy (as a deny), the rest is applied", async () => {
  const netns = await createNetns("cnt");
  try {
    const plan = planFirewall(snap, fwOptions(), "node-a");
    const webSet = [...plan.owners].find(([n, o]) =>
      o === "NetworkPolicy a/web" && n.startsWith("KUBE-SRC")
    )![0];
    const dbSet = [...plan.owners].find(([n, o]) =>
      o === "NetworkPolicy a/db" && n.startsWith("KUBE-SRC")
    )![0];
    // A stale set of another type under web's set name: `ipset restore` cannot swap into it.
    await netns.runner.run(["ipset", "create", webSet, "hash:ip", "family", "inet"]);

    const lines: string[] = [];
    const metrics = new MetricsRegistry();
    let health: string[] = [];
    const ctl = createFirewallController({
      healthNote: (l) => health = l,
      options: { ...defaultOptions() },
      runner: netns.runner,
      nodeName: "node-a",
      log: recordingLog(lines),
      metrics,
      dryRun: false,
    });
    await ctl.sync(snap, new AbortController().signal); // Before containment: throws here.

    assert.deepEqual([...ctl.refused.keys()], ["NetworkPolicy a/web"]);
    assert.ok(
      lines.some((l) => /^E NetworkPolicy a\/web left out of the firewall: the kernel tool refused/.test(l)),
      lines.join("\n"),
    );
    assert.equal(
      metrics.counter("kube_router_firewall_objects_refused_total", "").get({ kind: "NetworkPolicy" }),
      1,
    );
    assert.equal(health.length, 1);
    assert.match(
      health[0],
      /^firewall: NetworkPolicy a\/web left out \(the kernel tool refused it\): .*ipset restore/,
    );
    const ipt = await netns.sh("iptables-save -t filter");
    const sets = await netns.sh("ipset save");
    // The other policy is applied in full.
    assert.match(ipt, /run ingress of POD a\/db through network policy a\/db/);
    assert.match(sets, new RegExp(`add ${dbSet} 172\\.20\\.0\\.0/16`));
    // The refused policy still isolates its pod (fail closed), allowing nothing.
    assert.match(ipt, /run ingress of POD a\/web through network policy a\/web/);
    assert.doesNotMatch(ipt, new RegExp(`--match-set ${webSet}`));
    assert.doesNotMatch(sets, /172\.16\.0\.0\/12/);
    // A pod no policy selects is open, as always.
    assert.match(ipt, /ingress of POD a\/open: no network policy selects it/);

    // The obstacle is gone (the stale set was ours by name, so it was cleaned up): once the policy
    // changes it is applied in full.
    const changed = { ...snap.networkPolicies.get("a/web")! };
    const snap2 = {
      ...snap,
      revision: 2,
      networkPolicies: new Map([...snap.networkPolicies, ["a/web", changed]]),
    };
    await ctl.sync(snap2, new AbortController().signal);
    assert.equal(ctl.refused.size, 0);
    assert.deepEqual(health, [], "the health note is cleared");
    assert.match(await netns.sh("ipset save"), /172\.16\.0\.0\/12/);
  } finally {
    await netns.dispose();
  }
});

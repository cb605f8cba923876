/**
 * The router and the firewall both hook the built-in FORWARD chain, as they do under
 * `kube-router run`: the router's `KUBE-ROUTER-PODNET-FWD` ACCEPTs everything in and out of
 * kube-bridge, the firewall's `KUBE-ROUTER-FORWARD` enforces NetworkPolicy. Whichever syncs
 * last, a default-deny policy must still block pod-to-pod traffic on the bridge — real packets
 * through the real appliers, in a lab node namespace. (The router used to re-insert its ACCEPT
 * at position 1 on every sync, so policies blocked nothing between the firewall's 5-minute
 * repairs.)
 *
 * Addresses (lab conventions): node 10.250.0.1, pods 10.251.1.2 (client) and 10.251.1.3 (server).
 */
import assert from "node:assert/strict";
import { defaultOptions } from "../../options/mod.ts";
import { IptablesApplier } from "../../controllers/firewall/apply.ts";
import { planFirewall } from "../../controllers/firewall/plan.ts";
import { applyNetfilter, FWD_CHAIN } from "../../controllers/router/netfilter.ts";
import { POLICY_FORWARD_CHAIN } from "../../controllers/forward_order.ts";
import { CommandRunner } from "../../kernel/exec.ts";
import { listChain } from "../../kernel/iptables/mod.ts";
import {
  type ClusterSnapshot,
  emptySnapshot,
  type NetworkPolicyInfo,
  type PodInfo,
} from "../../watch/types.ts";
import { createLab } from "../fixtures/lab.ts";

function pod(name: string, ip: string): PodInfo {
  return {
    namespace: "default",
    name,
    uid: name,
    labels: { app: name },
    annotations: {},
    nodeName: "node-1",
    hostIP: "10.250.0.1",
    podIPs: [ip],
    hostNetwork: false,
    phase: "Running",
    containerPorts: [],
    deletionTimestamp: null,
    terminationGracePeriodSeconds: 0,
  };
}

Deno.test({
  name:
    "FORWARD order: a default-deny policy blocks pod traffic whichever of router and firewall synced last",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = await createLab({ prefix: "fwo", nodes: [{ name: "node-1" }] });
    const client = await lab.addPod("node-1", { name: "client" });
    const server = await lab.addPod("node-1", { name: "server" });
    await lab.serve("server", { tcp: [8080] });
    const node = lab.node("node-1");
    const runner = new CommandRunner(node.netns);
    const tool = { family: "ipv4" as const, backend: "nft" as const };

    const deny: NetworkPolicyInfo = {
      namespace: "default",
      name: "deny-server",
      podSelector: { matchLabels: { app: "server" }, matchExpressions: [] },
      policyTypes: ["Ingress"],
      ingress: [],
      egress: [],
    };
    const snapshot = (policies: NetworkPolicyInfo[]): ClusterSnapshot => ({
      ...emptySnapshot(),
      nodes: new Map([["node-1", {
        name: "node-1",
        labels: {},
        annotations: {},
        podCIDRs: [node.podCidr],
        internalIPs: [node.ip],
        externalIPs: [],
        providerID: "",
      }]]),
      namespaces: new Map([["default", {
        name: "default",
        labels: { "kubernetes.io/metadata.name": "default" },
      }]]),
      pods: new Map([["default/client", pod("client", client.ip)], [
        "default/server",
        pod("server", server.ip),
      ]]),
      networkPolicies: new Map(policies.map((p) => [`${p.namespace}/${p.name}`, p])),
    });

    const routerPlan = {
      v6: false,
      podEgress: false,
      bridge: "kube-bridge",
      podCidrs: [node.podCidr],
      nodeIps: [node.ip],
    };
    const firewall = new IptablesApplier(runner, { backend: "nft" });
    const forwardTargets = async () =>
      ((await listChain(runner, tool, "filter", "FORWARD")) ?? []).map((r) => r.args.at(-1));
    const probe = async () => (await lab.tcpProbe("client", server.ip, 8080)).status;

    // Router first (fresh node), then the firewall, then the router's next sync.
    await applyNetfilter(runner, "nft", routerPlan);
    await firewall.apply(planFirewall(snapshot([deny]), defaultOptions(), "node-1"));
    assert.notEqual(await probe(), "connected", "default deny must block client -> server");
    const changed = await applyNetfilter(runner, "nft", routerPlan);
    assert.equal(changed, false, "the router's resync must leave a correctly ordered FORWARD alone");
    assert.notEqual(await probe(), "connected", "default deny must still block after the router resynced");

    // The firewall already hooked, the router (re)inserts its jump: it lands after the policy hook.
    await runner.run(["iptables", "-D", "FORWARD", "-j", FWD_CHAIN]);
    await applyNetfilter(runner, "nft", routerPlan);
    const targets = await forwardTargets();
    assert.ok(
      targets.indexOf(POLICY_FORWARD_CHAIN) < targets.indexOf(FWD_CHAIN),
      `FORWARD jumps in order: ${targets.join(", ")}`,
    );
    assert.notEqual(
      await probe(),
      "connected",
      "default deny must block after the router re-inserted its jump",
    );

    // Without the policy the router's ACCEPT forwards the pod traffic (the host's policy is DROP).
    await runner.run(["iptables", "-P", "FORWARD", "DROP"]);
    await firewall.apply(planFirewall(snapshot([]), defaultOptions(), "node-1"));
    assert.equal(await probe(), "connected", "with no policy the pods reach each other through FORWARD DROP");
  },
});

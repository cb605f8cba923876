// DSR pod side and start-up sysctls, pure parts. The tunnel batches are golden tests, FORMAT
// ONLY: this kernel has no ipip/ip6tnl, so `link add ... type ipip` is never run successfully
// here (tests/integration/proxy_dsr_netns_test.ts runs every other line for real).
// Addresses: VIPs 198.51.100.0/24 and 2001:db8:5::/64, pods 10.201.0.0/24 and 2001:db8:201::/64.
import assert from "node:assert/strict";
import { DryRunRunner } from "../../kernel/exec.ts";
import type { ProcFs } from "../../kernel/netns/mod.ts";
import { DsrApplier, dsrPodTargets, parseTunnelState, podCommand, renderTunnelLines } from "./dsr.ts";
import { plan } from "./plan.ts";
import { needsSloppyTcp, sysctlKeys, wantedSysctls } from "./sysctls.ts";
import { ep, nodeA, pod, proxyOptions, slice, snapshot, svc } from "./testing.ts";

const opts = proxyOptions({ serviceExternalIpRange: ["198.51.100.0/24"], enableIpv6: true });

function dsrPlan(sched = "") {
  return plan(
    snapshot({
      services: [
        svc("d", {
          clusterIPs: ["10.96.0.100"],
          externalIPs: ["198.51.100.100", "198.51.100.101"],
          ports: [{ port: 80 }, { port: 443 }],
          annotations: {
            "kube-router.io/service.dsr": "tunnel",
            ...(sched ? { "kube-router.io/service.scheduler": sched } : {}),
          },
        }),
        svc("plain", { externalIPs: ["198.51.100.102"] }),
      ],
      slices: [
        slice("d", [
          ep("10.201.0.5", "node-a", { targetPod: "default/p1" }),
          ep("10.201.0.6", "node-b", { targetPod: "default/p2" }),
        ]),
        slice("plain", [ep("10.201.0.7", "node-a", { targetPod: "default/p3" })]),
      ],
      pods: [pod("p1"), pod("p2", { nodeName: "node-b" }), pod("p3")],
    }),
    opts,
    nodeA(),
  );
}

Deno.test("dsrPodTargets: local endpoints of DSR services only, each with every DSR VIP once", () => {
  assert.deepEqual(dsrPodTargets(dsrPlan()), [
    { pod: "default/p1", podIp: "10.201.0.5", family: 4, vips: ["198.51.100.100", "198.51.100.101"] },
  ]);
});

Deno.test("tunnel batch golden (format only): ipip / ip6tnl creation, up, VIPs, stale VIP removed", () => {
  const t4 = { pod: "default/p1", podIp: "10.201.0.5", family: 4 as const, vips: ["198.51.100.100"] };
  assert.deepEqual(renderTunnelLines(t4, { exists: false, up: false, addrs: [] }), [
    "link add name kube-tunnel-if type ipip local 10.201.0.5",
    "link set kube-tunnel-if up",
    "addr add 198.51.100.100/32 dev kube-tunnel-if",
  ]);
  const t6 = { pod: "default/p6", podIp: "2001:db8:201::5", family: 6 as const, vips: ["2001:db8:5::1"] };
  assert.deepEqual(renderTunnelLines(t6, { exists: false, up: false, addrs: [] }), [
    "link add name kube-tunnel-v6 type ip6tnl local 2001:db8:201::5 mode ip6ip6",
    "link set kube-tunnel-v6 up",
    "addr add 2001:db8:5::1/128 dev kube-tunnel-v6",
  ]);
  assert.deepEqual(
    renderTunnelLines(t4, { exists: true, up: true, addrs: ["198.51.100.100/32", "198.51.100.9/32"] }),
    ["addr del 198.51.100.9/32 dev kube-tunnel-if"],
  );
  assert.deepEqual(renderTunnelLines(t4, { exists: true, up: true, addrs: ["198.51.100.100/32"] }), []);

  const cmd = podCommand("/proc/42/ns/net", t4, ["link set kube-tunnel-if up"]);
  assert.deepEqual(cmd.argv, [
    "nsenter",
    "--net=/proc/42/ns/net",
    "sh",
    "-c",
    'ip -batch - && sysctl -q -w "$@"',
    "kube-router-dsr",
    "net.ipv4.conf.kube-tunnel-if.rp_filter=0",
    "net.ipv4.conf.eth0.rp_filter=0",
    "net.ipv4.conf.all.rp_filter=0",
  ]);
  assert.equal(cmd.stdin, "link set kube-tunnel-if up\n");
  assert.deepEqual(podCommand("/x", t6, []).argv.slice(4), ["ip -batch -", "kube-router-dsr"]);
  // The agent passes full paths (a busybox `sh` would run its own `ip` applet for a bare name).
  assert.equal(
    podCommand("/x", t4, [], { ip: "/usr/sbin/ip", sysctl: "/opt/my tools/sysctl" }).argv[4],
    `/usr/sbin/ip -batch - && '/opt/my tools/sysctl' -q -w "$@"`,
  );
});

Deno.test("parseTunnelState from ip -j addr show", () => {
  const json = JSON.stringify([
    { ifname: "lo", flags: ["LOOPBACK", "UP"], addr_info: [{ local: "127.0.0.1", prefixlen: 8 }] },
    {
      ifname: "kube-tunnel-if",
      flags: ["POINTOPOINT", "NOARP"],
      addr_info: [{ local: "198.51.100.100", prefixlen: 32, scope: "global" }],
    },
  ]);
  assert.deepEqual(parseTunnelState(json, 4), { exists: true, up: false, addrs: ["198.51.100.100/32"] });
  assert.deepEqual(parseTunnelState(json, 6), { exists: false, up: false, addrs: [] });
});

Deno.test("DsrApplier: a pod whose namespace is not found is logged by name and skipped", async () => {
  const runner = new DryRunRunner();
  const warnings: string[] = [];
  const empty: ProcFs = {
    pids: () => Promise.resolve([]),
    readLink: () => Promise.resolve(undefined),
    readText: () => Promise.resolve(undefined),
  };
  const a = new DsrApplier(runner, {
    families: [4],
    runtimeEndpoint: "",
    procfs: empty,
    log: { warn: (m) => warnings.push(m), error: (m) => warnings.push(m), debug: () => {} },
  });
  const ran = await a.apply(dsrPlan(), false);
  assert.deepEqual(ran, ["dsr-rules-v4"]);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0],
    /pod default\/p1 \(10\.201\.0\.5\) not found: no process's network namespace holds it; pod skipped/,
  );
  assert.deepEqual(runner.recorded.map((r) => r.argv.join(" ")), ["ip -4 -batch -"]);
  assert.equal(runner.recorded[0].stdin?.split("\n").filter((l) => l.startsWith("rule add")).length, 4);
  // Same plan again: nothing run, not logged twice.
  await a.apply(dsrPlan(), false);
  assert.equal(runner.recorded.length, 1);
  assert.equal(warnings.length, 1);
});

Deno.test("sysctls: IPVS keys only with net/ipv4/vs, rp_filter only 1 → 2, sloppy_tcp iff DSR uses mh", () => {
  const inputs = { ipvs: true, links: ["kube-bridge", "kube-dummy-if", "eth0"], sloppyTcp: false };
  assert.deepEqual(sysctlKeys(inputs), [
    "net.ipv4.conf.all.arp_ignore",
    "net.ipv4.conf.all.arp_announce",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.kube-bridge.rp_filter",
    "net.ipv4.conf.kube-dummy-if.rp_filter",
    "net.ipv4.conf.eth0.rp_filter",
    "net.ipv4.vs.conntrack",
    "net.ipv4.vs.expire_nodest_conn",
    "net.ipv4.vs.expire_quiescent_template",
    "net.ipv4.vs.conn_reuse_mode",
    "net.ipv4.vs.sloppy_tcp",
  ]);
  const noVs = new Map([
    ["net.ipv4.conf.all.arp_ignore", "0"],
    ["net.ipv4.conf.all.arp_announce", "0"],
    ["net.ipv4.conf.all.rp_filter", "1"],
    ["net.ipv4.conf.kube-bridge.rp_filter", "0"],
    ["net.ipv4.conf.eth0.rp_filter", "1"],
  ]);
  const r = wantedSysctls(noVs, inputs);
  assert.deepEqual([...r.wanted], [
    ["net.ipv4.conf.all.arp_ignore", "1"],
    ["net.ipv4.conf.all.arp_announce", "2"],
    ["net.ipv4.conf.all.rp_filter", "2"],
    ["net.ipv4.conf.eth0.rp_filter", "2"],
  ]);
  assert.match(r.warnings[0], /net\/ipv4\/vs is absent/);
  const withVs = new Map([...noVs, ["net.ipv4.vs.conntrack", "0"], ["net.ipv4.vs.sloppy_tcp", "0"]]);
  const v = wantedSysctls(withVs, { ...inputs, sloppyTcp: true });
  assert.equal(v.warnings.length, 0);
  assert.equal(v.wanted.get("net.ipv4.vs.conntrack"), "1");
  assert.equal(v.wanted.get("net.ipv4.vs.conn_reuse_mode"), "0");
  assert.equal(v.wanted.get("net.ipv4.vs.sloppy_tcp"), "1");
  assert.equal(wantedSysctls(withVs, { ...inputs, ipvs: false }).wanted.has("net.ipv4.vs.conntrack"), false);

  assert.equal(needsSloppyTcp(dsrPlan()), false);
  assert.equal(needsSloppyTcp(dsrPlan("mh")), true);
});

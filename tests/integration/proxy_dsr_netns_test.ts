// Integration: DSR (`kube-router.io/service.dsr=tunnel`) in IPVS mode, in lab namespaces.
//
// Real here: finding each local endpoint pod's network namespace by scanning /proc (a process
// sleeps in each "pod"), the one `nsenter --net=/proc/<pid>/ns/net sh -c 'ip -batch - && sysctl'`
// per pod (link up, VIP added, rp_filter=0 on kube-tunnel-if, eth0, all), the director's
// `ip rule fwmark … lookup 78 priority 32764` + table 78 `local default dev lo`, the mangle MARK
// and TCPMSS rules as the kernel loaded them, and real packets: a client's SYN to the DSR VIP is
// marked and routed into the node's INPUT (local delivery, where IPVS would take it), a non-DSR
// port of the same VIP is not.
//
// A second test finds the namespace through the CRI instead (a fake runtime speaking gRPC on a
// UNIX socket, kernel/cri/fake_server.ts, reporting the pod's /run/netns path as containerd does).
//
// NOT real (no IPIP/ip6tnl in this kernel): the `link add … type ipip` line. The first pod gets a
// stand-in `kube-tunnel-if` (a port-less bridge) before the sync, so every other line runs for
// real; the second pod has no stand-in, so its batch fails at the `ipip` line, which must be
// logged with the pod's name and the offending line while the rest is still served. The ipip
// line's format is golden-tested in controllers/proxy/dsr_test.ts (format only). IPVS itself runs
// against the IPVS model (kernel/ipvs/model.ts), as in proxy_ipvs_test.ts.
//
// Addresses: lab node-1 10.250.0.1 (subnet a), pod CIDR 10.214.<random>.0/24 (random so a /proc scan
// can never meet another test's pod), pods .5 ("web", stand-in tunnel), .6 ("bare", no tunnel),
// .9 ("ghost": in the snapshot, no namespace anywhere); client 10.250.0.x; DSR VIP
// 198.51.100.50:80 (CRI test: pod CIDR 10.215.<random>.0/24, VIP 198.51.100.51); foreign rules fwmark 0x99 → table 100 and fwmark 0x77 → table 78 at prio 100.
import assert from "node:assert/strict";
import { defaultOptions } from "../../options/mod.ts";
import type { ControllerContext } from "../../controllers/controller.ts";
import { createProxyController, proxyCleanup } from "../../controllers/proxy/mod.ts";
import { ep, pod, procFsLimitedTo, slice, snapshot, svc } from "../../controllers/proxy/testing.ts";
import { CommandRunner } from "../../kernel/exec.ts";
import { startFakeCri } from "../../kernel/cri/fake_server.ts";
import { IpvsModelRunner } from "../../kernel/ipvs/model_runner.ts";
import { scanNetns } from "../../kernel/netns/mod.ts";
import { logger } from "../../observe/log.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import type { ClusterSnapshot } from "../../watch/types.ts";
import { createLab } from "../fixtures/lab.ts";

const VIP = "198.51.100.50";

Deno.test({
  name:
    "DSR: pod netns found via /proc, one nsenter batch per pod, fwmark routing + MARK/TCPMSS with real packets",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const third = 1 + Math.floor(Math.random() * 250);
    const podCidr = `10.214.${third}.0/24`;
    const podIp = (k: number) => `10.214.${third}.${k}`;
    await using lab = await createLab({ prefix: "pxf", nodes: [{ name: "node-1", podCidr }] });
    const web = await lab.addPod("node-1", { name: "web", ip: podIp(5) });
    const bare = await lab.addPod("node-1", { name: "bare", ip: podIp(6) });
    const client = await lab.addClient("c1");
    const node = lab.node("node-1");
    // A process in each pod namespace: that is what makes it findable through /proc.
    await lab.spawn("web", ["sleep", "600"]);
    await lab.spawn("bare", ["sleep", "600"]);
    const procfs = await procFsLimitedTo([web.netns, bare.netns]);
    for (let i = 0; i < 50; i++) {
      const ips = (await scanNetns(procfs)).flatMap((e) => e.addresses);
      if (ips.includes(web.ip) && ips.includes(bare.ip)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // Stand-in for the ipip link this kernel cannot create (see the header).
    await lab.exec("web", ["ip", "link", "add", "kube-tunnel-if", "type", "bridge"]);
    await lab.exec("c1", ["ip", "route", "add", `${VIP}/32`, "via", node.ip]);
    const sh = (cmd: string) => lab.exec("node-1", ["sh", "-c", cmd]);
    await sh(
      "ip rule add fwmark 0x99 lookup 100 priority 32764 && ip rule add fwmark 0x77 lookup 78 priority 100",
    );

    const logs: string[] = [];
    const base = logger("proxy-dsr-test");
    const counting = new CommandRunner(node.netns);
    const ctx: ControllerContext = {
      options: { ...defaultOptions(), serviceProxyMode: "ipvs", serviceExternalIpRange: ["198.51.100.0/24"] },
      runner: new IpvsModelRunner(counting),
      nodeName: "node-1",
      log: new Proxy(base, {
        get: (t, prop) =>
          prop === "warn" || prop === "error"
            ? (m: unknown) => logs.push(`${String(prop)}: ${m}`)
            : Reflect.get(t, prop).bind(t),
      }),
      metrics: new MetricsRegistry(),
      dryRun: false,
    };
    const snap = (revision: number): ClusterSnapshot => ({
      ...snapshot({
        revision,
        services: [svc("dsr", {
          clusterIPs: ["10.96.0.50"],
          externalIPs: [VIP],
          annotations: { "kube-router.io/service.dsr": "tunnel" },
        })],
        slices: [slice("dsr", [
          ep(web.ip, "node-1", { targetPod: "default/web" }),
          ep(bare.ip, "node-1", { targetPod: "default/bare" }),
          ep(podIp(9), "node-1", { targetPod: "default/ghost" }),
        ])],
        pods: [pod("web", { nodeName: "node-1" }), pod("bare", { nodeName: "node-1" })],
      }),
      nodes: new Map([["node-1", {
        name: "node-1",
        labels: {},
        annotations: {},
        podCIDRs: [], // no pod-CIDR SNAT rule: it needs xt_ipvs, absent here
        internalIPs: [node.ip],
        externalIPs: [],
        providerID: "",
      }]]),
    });
    const proxy = createProxyController(ctx, { healthChecks: false, iptablesBackend: "nft", procfs });
    try {
      await proxy.sync(snap(1));

      // Pod side, for real in "web": stand-in link up, VIP on it, rp_filter 0 on it, eth0, all.
      const inWeb = (cmd: string) => lab.exec("web", ["sh", "-c", cmd]);
      const link =
        (await inWeb("ip -o addr show dev kube-tunnel-if; ip -o link show dev kube-tunnel-if")).stdout;
      assert.match(link, new RegExp(`inet ${VIP.replaceAll(".", "\\.")}/32`), link);
      assert.match(link, /[<,]UP[,>]/, link);
      const rp = (await inWeb(
        "sysctl -n net.ipv4.conf.kube-tunnel-if.rp_filter net.ipv4.conf.eth0.rp_filter net.ipv4.conf.all.rp_filter",
      )).stdout.trim().split("\n");
      assert.deepEqual(rp, ["0", "0", "0"]);

      // "bare": the ipip line fails on this kernel; logged with the pod and the line, nothing half-done.
      const bareErr = logs.find((l) => l.includes("default/bare"));
      assert.ok(bareErr, logs.join("\n"));
      assert.match(
        bareErr!,
        /^error: DSR: pod default\/bare .*"link add name kube-tunnel-if type ipip local 10\.214\./,
      );
      assert.doesNotMatch((await lab.exec("bare", ["ip", "-o", "addr"])).stdout, /198\.51\.100\.50/);
      // "ghost": no namespace anywhere; logged by name and skipped.
      assert.ok(
        logs.some((l) => /warn: DSR: network namespace of pod default\/ghost .* not found.*skipped/.test(l)),
        logs.join("\n"),
      );

      // Director side: rules, table 78, MARK + TCPMSS as the kernel holds them.
      const rules = JSON.parse((await sh("ip -4 -j rule show")).stdout) as Array<Record<string, unknown>>;
      const ours = rules.filter((r) => r.table === "78" && r.priority === 32764);
      assert.equal(ours.length, 1, JSON.stringify(rules));
      assert.match((await sh("ip -4 route show table 78")).stdout, /^local default dev lo/m);
      const mangle = (await sh("iptables-save -t mangle")).stdout;
      const mark = String(ours[0].fwmark);
      assert.match(
        mangle,
        new RegExp(
          `-A KUBE-ROUTER-DSR -d ${VIP}/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark ${mark}/0xffffffff`,
        ),
      );
      assert.match(
        mangle,
        /-A KUBE-ROUTER-DSR-MSS -s 198\.51\.100\.50\/32 -i kube-bridge -p tcp -m tcp --sport 80 --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1440/,
      );
      assert.match(mangle, /-A PREROUTING -m comment --comment "kube-router proxy" -j KUBE-ROUTER-DSR-MSS/);

      // Real packets: a SYN to VIP:80 is marked and routed by table 78 into INPUT (local
      // delivery, where IPVS's LOCAL_IN hook takes it); a SYN to VIP:81 carries no mark and never
      // reaches INPUT. (No local socket can answer from a VIP held by no interface: that is the
      // tunnel's job, so the probes themselves time out; counters in INPUT are the evidence.)
      await sh(
        `iptables -I INPUT 1 -d ${VIP}/32 -p tcp --dport 80 -m mark --mark ${mark} -m comment --comment pxf-dsr80 && ` +
          `iptables -I INPUT 1 -d ${VIP}/32 -p tcp --dport 81 -m comment --comment pxf-dsr81`,
      );
      await lab.tcpProbe("c1", VIP, 80, 500);
      await lab.tcpProbe("c1", VIP, 81, 500);
      const counters = (await sh("iptables -L INPUT -v -n -x")).stdout;
      const pkts = (tag: string) =>
        Number(counters.split("\n").find((l) => l.includes(tag))!.trim().split(/\s+/)[0]);
      assert.ok(pkts("pxf-dsr80") >= 1, counters);
      assert.equal(pkts("pxf-dsr81"), 0, counters);
      assert.ok(client.ip);
      await sh("iptables -D INPUT 1 && iptables -D INPUT 1");

      // Unchanged snapshot: no command at all (the ghost is looked for in /proc, not by a process).
      const before = counting.launched;
      await proxy.sync(snap(2));
      assert.equal(counting.launched, before);
    } finally {
      await proxy.stop();
    }

    await proxyCleanup(ctx);
    const rulesAfter = (await sh("ip -4 rule show; ip -4 route show table 78 || true")).stdout;
    assert.doesNotMatch(rulesAfter, /^32764:.*lookup 78/m, rulesAfter);
    assert.match(rulesAfter, /fwmark 0x99 lookup 100/, "foreign rule kept");
    assert.match(
      rulesAfter,
      /100:\s+from all fwmark 0x77 lookup 78/,
      "foreign table-78 rule at another priority kept",
    );
    assert.doesNotMatch(rulesAfter, /local default dev lo/);
    assert.doesNotMatch((await sh("iptables-save -t mangle")).stdout, /KUBE-ROUTER-DSR/);
  },
});

Deno.test({
  name:
    "DSR via the CRI: the pod's netns path comes from PodSandboxStatus (fake runtime over gRPC), no process needed",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // Pod "web" has NO process, so only the CRI can name its namespace (/run/netns/<name>, as
    // containerd's runtimeSpec does); "old" has only a NOTREADY sandbox: not found, logged, skipped.
    const third = 1 + Math.floor(Math.random() * 250);
    const podCidr = `10.215.${third}.0/24`;
    await using lab = await createLab({ prefix: "pxf", nodes: [{ name: "node-1", podCidr }] });
    const web = await lab.addPod("node-1", { name: "web", ip: `10.215.${third}.5` });
    await lab.exec("web", ["ip", "link", "add", "kube-tunnel-if", "type", "bridge"]); // stand-in (no IPIP)
    const fake = await startFakeCri([
      {
        id: "sb-web",
        name: "web",
        namespace: "default",
        uid: "u1",
        ready: true,
        netnsPath: `/run/netns/${web.netns}`,
      },
      {
        id: "sb-old",
        name: "old",
        namespace: "default",
        uid: "u2",
        ready: false,
        netnsPath: "/run/netns/none",
      },
    ]);
    const node = lab.node("node-1");
    const logs: string[] = [];
    const base = logger("proxy-dsr-cri-test");
    const ctx: ControllerContext = {
      options: {
        ...defaultOptions(),
        serviceProxyMode: "ipvs",
        serviceExternalIpRange: ["198.51.100.0/24"],
        runtimeEndpoint: fake.endpoint,
      },
      runner: new IpvsModelRunner(new CommandRunner(node.netns)),
      nodeName: "node-1",
      log: new Proxy(base, {
        get: (t, prop) =>
          prop === "warn" || prop === "error"
            ? (m: unknown) => logs.push(`${String(prop)}: ${m}`)
            : Reflect.get(t, prop).bind(t),
      }),
      metrics: new MetricsRegistry(),
      dryRun: false,
    };
    const procfs = await procFsLimitedTo([web.netns]); // holds no process: /proc finds nothing
    const proxy = createProxyController(ctx, { healthChecks: false, iptablesBackend: "nft", procfs });
    try {
      await proxy.sync({
        ...snapshot({
          services: [svc("dsr", {
            clusterIPs: ["10.96.0.51"],
            externalIPs: ["198.51.100.51"],
            annotations: { "kube-router.io/service.dsr": "tunnel" },
          })],
          slices: [slice("dsr", [
            ep(web.ip, "node-1", { targetPod: "default/web" }),
            ep(`10.215.${third}.6`, "node-1", { targetPod: "default/old" }),
          ])],
        }),
        nodes: new Map([["node-1", {
          name: "node-1",
          labels: {},
          annotations: {},
          podCIDRs: [],
          internalIPs: [node.ip],
          externalIPs: [],
          providerID: "",
        }]]),
      });
      const link = (await lab.exec("web", ["ip", "-o", "addr", "show", "dev", "kube-tunnel-if"])).stdout;
      assert.match(link, /inet 198\.51\.100\.51\/32/, `${link}\n${logs.join("\n")}`);
      assert.ok(fake.calls.includes("/runtime.v1.RuntimeService/ListPodSandbox"), fake.calls.join());
      assert.ok(fake.calls.includes("/runtime.v1.RuntimeService/PodSandboxStatus"), fake.calls.join());
      assert.ok(
        logs.some((l) => /warn: DSR: network namespace of pod default\/old .* not found.*skipped/.test(l)),
        logs.join("\n"),
      );
    } finally {
      await proxy.stop();
      await fake.close();
    }
    await proxyCleanup(ctx);
  },
});

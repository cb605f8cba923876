// Controller-level tests without a kernel: --dry-run records the transactions each mode would run
// (and nothing on a sync without change), and the healthCheckNodePort server answers over HTTP on
// loopback. Addresses: VIPs 10.96.0.0/16, node 192.0.2.10, pods 10.201.0.0/24; health ports are
// picked free on 127.0.0.1.
import assert from "node:assert/strict";
import { DryRunRunner, ExecError } from "../../kernel/exec.ts";
import { logger } from "../../observe/log.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import type { ControllerContext } from "../controller.ts";
import { createProxyController } from "./mod.ts";
import { ep, proxyOptions, slice, snapshot, svc } from "./testing.ts";
import { FakeClock, settle } from "../fake_clock.ts";

function ctx(mode: "ipvs" | "nftables", runner: DryRunRunner): ControllerContext {
  return {
    options: { ...proxyOptions(), ...{ serviceProxyMode: mode } } as ControllerContext["options"],
    runner,
    nodeName: "node-a",
    log: logger("proxy-test"),
    metrics: new MetricsRegistry(),
    dryRun: true,
  };
}

const snap = snapshot({
  services: [
    svc("web", { clusterIPs: ["10.96.0.10"] }),
    svc("dns", { clusterIPs: ["10.96.0.53"], ports: [{ port: 53, protocol: "UDP" }] }),
  ],
  slices: [
    slice("web", [ep("10.201.0.5")]),
    slice("dns", [ep("10.201.0.6")], { ports: [{ name: "", port: 53, protocol: "UDP" }] }),
  ],
});

Deno.test("dry-run, nftables mode: one nft transaction, then nothing for an unchanged snapshot", async () => {
  const runner = new DryRunRunner();
  const c = createProxyController(ctx("nftables", runner), { healthChecks: false });
  await c.sync(snap);
  assert.deepEqual(runner.recorded.map((r) => r.argv.join(" ")), ["nft -f -"]);
  assert.match(
    runner.recorded[0].stdin!,
    /add element ip kube-router-proxy service-ips \{.*10\.96\.0\.10 \. tcp \. 80 : goto spread-1/,
  );
  await c.sync({ ...snap, revision: 2 });
  assert.equal(runner.recorded.length, 1);
  await c.stop();
});

Deno.test("dry-run, IPVS mode: link, addresses, ipsets, iptables, one ipvsadm batch; then nothing", async () => {
  const runner = new DryRunRunner();
  const c = createProxyController(ctx("ipvs", runner), { healthChecks: false, iptablesBackend: "nft" });
  await c.sync(snap);
  const argv = runner.recorded.map((r) => r.argv.join(" "));
  assert.deepEqual(argv, [
    "ip -batch -",
    "ip -batch -",
    "ipset restore",
    "iptables-nft-restore --noflush -w",
    "ipvsadm -R",
  ]);
  const ipvs = runner.recorded.find((r) => r.argv[0] === "ipvsadm")!.stdin!;
  assert.equal(
    ipvs,
    [
      "-A -t 10.96.0.10:80 -s rr",
      "-A -u 10.96.0.53:53 -s rr",
      "-a -t 10.96.0.10:80 -r 10.201.0.5:8080 -m -w 1",
      "-a -u 10.96.0.53:53 -r 10.201.0.6:53 -m -w 1",
    ].join("\n") + "\n",
  );
  await c.sync({ ...snap, revision: 2 });
  assert.equal(runner.recorded.length, 5, "unchanged snapshot: nothing recorded");
  await c.stop();
});

Deno.test("healthCheckNodePort: 200 with local endpoints, 503 without, served over HTTP", async () => {
  const free = () => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    return port;
  };
  const [p1, p2] = [free(), free()];
  const local = (name: string, port: number, node: string) => ({
    svc: svc(name, {
      type: "NodePort",
      clusterIPs: [`10.96.0.${port % 200}`],
      externalTrafficPolicy: "Local",
      healthCheckNodePort: port,
      ports: [{ port: 80, nodePort: 30000 + (port % 2000) }],
    }),
    slice: slice(name, [ep("10.201.0.7", node)]),
  });
  const a = local("here", p1, "node-a"), b = local("elsewhere", p2, "node-b");
  const c = createProxyController(ctx("nftables", new DryRunRunner()), { healthHostname: "127.0.0.1" });
  try {
    await c.sync(snapshot({ services: [a.svc, b.svc], slices: [a.slice, b.slice] }));
    const r1 = await fetch(`http://127.0.0.1:${p1}/healthz`);
    assert.equal(r1.status, 200);
    assert.deepEqual(await r1.json(), { service: { namespace: "default", name: "here" }, localEndpoints: 1 });
    const r2 = await fetch(`http://127.0.0.1:${p2}/`);
    assert.equal(r2.status, 503);
    await r2.body?.cancel();
    // The service goes away: its port is closed.
    await c.sync(snapshot({ services: [a.svc], slices: [a.slice], revision: 2 }));
    await assert.rejects(() => fetch(`http://127.0.0.1:${p2}/`));
  } finally {
    await c.stop();
  }
});

Deno.test("IPVS mode on a kernel without IPVS: a clear error, and nothing else changed first", async () => {
  const ran: string[] = [];
  const runner = {
    run(argv: readonly string[], options: { readOnly?: boolean } = {}) {
      if (argv[0] === "ipvsadm") {
        return Promise.reject(
          new ExecError(
            argv,
            2,
            "Can't initialize ipvs: Protocol not available\nAre you sure that IP Virtual Server is built in the kernel or as module?\n",
          ),
        );
      }
      if (!options.readOnly) ran.push(argv.join(" "));
      return Promise.resolve({ code: 0, stdout: "", stderr: "" });
    },
  };
  const c = createProxyController({ ...ctx("ipvs", new DryRunRunner()), runner }, {
    healthChecks: false,
    iptablesBackend: "nft",
  });
  await assert.rejects(() => c.sync(snap), /no IPVS.*--service-proxy-mode=nftables/);
  assert.deepEqual(ran, []);
  await c.stop();
});

Deno.test("sync lane: a drain deadline brings a sync of the last snapshot, through the same lane", async () => {
  const clock = new FakeClock();
  const runner = new DryRunRunner();
  const c = createProxyController(ctx("ipvs", runner), {
    healthChecks: false,
    iptablesBackend: "nft",
    clock,
  });
  const draining = snapshot({
    services: [svc("web", { clusterIPs: ["10.96.0.10"] })],
    slices: [
      slice("web", [ep("10.201.0.5"), ep("10.201.0.7", "node-a", { ready: false, terminating: true })]),
    ],
  });
  await c.sync(draining);
  const rs = () => c.applied!.services[0].realServers.map((r) => `${r.ip}/${r.weight}`);
  assert.deepEqual(rs(), ["10.201.0.5/1", "10.201.0.7/0"]);
  const grace = proxyOptions().ipvsGracefulPeriod;
  const before = runner.recorded.length;
  await clock.advance(grace - 1);
  assert.equal(runner.recorded.length, before, "nothing before the deadline");
  await clock.advance(20);
  await settle();
  assert.deepEqual(
    rs(),
    ["10.201.0.5/1"],
    "the drained server went at its deadline, with no sync from outside",
  );
  assert.ok(runner.recorded.slice(before).some((r) => r.argv.join(" ") === "ipvsadm -R"));
  await c.stop();
});

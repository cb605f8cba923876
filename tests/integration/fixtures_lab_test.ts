/**
 * The network lab fixture with real packets.
 *
 * Address conventions (the lab's defaults, all inside namespaces named `lab-<6 hex>-*` that each
 * test creates and removes): node network 10.250.0.0/24 (subnet "a") and 10.250.1.0/24 (subnet
 * "b", behind the router at .254); node i's pod CIDR 10.251.i.0/24, gateway .1 on kube-bridge,
 * pods from .2; clients from 10.250.k.100. 192.0.2.0/24 is used as an address nobody owns.
 */

import assert from "node:assert/strict";
import { CommandRunner } from "../../kernel/exec.ts";
import { createLab, type Lab, removeStaleLabs } from "../fixtures/lab.ts";

async function liveNamespaces(): Promise<Set<string>> {
  const out = (await new CommandRunner().run(["ip", "netns", "list"], { readOnly: true })).stdout;
  return new Set(out.split("\n").map((l) => l.split(" ")[0]).filter(Boolean));
}

async function assertGone(names: readonly string[]): Promise<void> {
  const live = await liveNamespaces();
  const left = names.filter((n) => live.has(n));
  assert.deepEqual(left, [], `namespaces left behind: ${left.join(", ")}`);
}

Deno.test("lab: pods on the same node and on different nodes reach each other over TCP and UDP", async () => {
  let lab: Lab | undefined;
  try {
    lab = await createLab({ nodes: [{ name: "node-1" }, { name: "node-2" }] });
    const a = await lab.addPod("node-1", { name: "pod-a" });
    const b = await lab.addPod("node-1", { name: "pod-b" });
    const c = await lab.addPod("node-2", { name: "pod-c" });
    assert.equal(a.ip, "10.251.1.2");
    assert.equal(b.ip, "10.251.1.3");
    assert.equal(c.ip, "10.251.2.2");
    for (const p of [a, b, c]) await lab.serve(p.name, { tcp: [8080], udp: [5353] });

    for (const [from, to] of [[a, b], [b, a], [a, c], [c, a], [b, c]]) {
      const t = await lab.tcpProbe(from.name, to.ip, 8080);
      assert.equal(t.status, "connected", `${from.name} -> ${to.name} tcp: ${JSON.stringify(t)}`);
      // The server names itself and saw the client's own pod IP: no NAT anywhere in the lab.
      assert.equal(t.server, to.name);
      assert.equal(t.clientIp, from.ip);
      const u = await lab.udpProbe(from.name, to.ip, 5353);
      assert.equal(u.status, "connected", `${from.name} -> ${to.name} udp: ${JSON.stringify(u)}`);
      assert.equal(u.server, to.name);
      assert.equal(u.clientIp, from.ip);
    }
    // Nodes reach pods too (source: the node's address on the way out).
    const n = await lab.tcpProbe("node-2", a.ip, 8080);
    assert.equal(n.status, "connected");
    assert.equal(n.clientIp, lab.node("node-2").ip);
  } finally {
    const names = lab?.namespaces ?? [];
    await lab?.teardown();
    await assertGone(names);
  }
});

Deno.test("lab: a node and a client on another subnet reach pods through the router", async () => {
  await using lab = await createLab({
    nodes: [{ name: "node-1" }, { name: "node-2" }, { name: "node-3", subnet: "b" }],
  });
  assert.ok(lab.router, "two subnets make a router");
  assert.equal(lab.node("node-3").ip, "10.250.1.1");
  assert.equal(lab.node("node-3").gateway, "10.250.1.254");
  const p1 = await lab.addPod("node-1", { name: "p1" });
  const p3 = await lab.addPod("node-3", { name: "p3" });
  const client = await lab.addClient("outside", { subnet: "b" });
  assert.equal(client.ip, "10.250.1.100");
  await lab.serve("p1", { tcp: [80], udp: [53] });
  await lab.serve("p3", { tcp: [80] });
  await lab.serve("node-1", { tcp: [10250] });

  const r = await lab.probeMany([
    { from: "p3", proto: "tcp", ip: p1.ip, port: 80 },
    { from: "p3", proto: "udp", ip: p1.ip, port: 53 },
    { from: "p1", proto: "tcp", ip: p3.ip, port: 80 },
    { from: "outside", proto: "tcp", ip: p1.ip, port: 80 },
    { from: "outside", proto: "tcp", ip: lab.node("node-1").ip, port: 10250 },
  ]);
  assert.deepEqual(r.map((x) => x.status), Array(5).fill("connected"), JSON.stringify(r));
  assert.deepEqual(r.map((x) => x.clientIp), [p3.ip, p3.ip, p1.ip, client.ip, client.ip]);
  // The router is a hop: TTL of a pod-to-pod packet across subnets drops by 3 (node, router, node).
  const ping = await lab.exec("p3", ["ping", "-c1", "-W2", p1.ip]);
  assert.match(ping.stdout, /ttl=61/);
});

Deno.test("lab: without static routes only the same node is reachable until routes are added", async () => {
  await using lab = await createLab({
    nodes: [{ name: "node-1" }, { name: "node-2" }],
    staticPodRoutes: false,
  });
  await lab.addPod("node-1", { name: "a" });
  const b = await lab.addPod("node-1", { name: "b" });
  const c = await lab.addPod("node-2", { name: "c" });
  for (const p of [b, c]) await lab.serve(p.name, { tcp: [80] });
  assert.equal((await lab.tcpProbe("a", b.ip, 80)).status, "connected");
  // node-1 has no route to 10.251.2.0/24 and no default route: the kernel answers unreachable.
  assert.equal((await lab.tcpProbe("a", c.ip, 80, 500)).status, "unreachable");
  const routes = (await lab.exec("node-1", ["ip", "route", "show", "proto", "static"])).stdout;
  assert.equal(routes.trim(), "");

  await lab.addStaticPodRoutes();
  assert.equal(
    (await lab.exec("node-1", ["ip", "route", "show", "proto", "static"])).stdout.trim(),
    "10.251.2.0/24 via 10.250.0.2 dev eth0",
  );
  assert.equal((await lab.tcpProbe("a", c.ip, 80)).status, "connected");
  await lab.removeStaticPodRoutes();
  assert.equal((await lab.exec("node-1", ["ip", "route", "show", "proto", "static"])).stdout.trim(), "");
});

Deno.test("lab: probes tell connected, refused, timeout and unreachable apart", async () => {
  await using lab = await createLab({ nodes: [{ name: "node-1" }] });
  const srv = await lab.addPod("node-1", { name: "srv" });
  await lab.addPod("node-1", { name: "cli" });
  await lab.serve("srv", { tcp: [80], udp: [53] });
  // A firewall inside the server pod's own namespace: DROP port 81, REJECT 82.
  await lab.exec("srv", ["iptables-restore"], {
    stdin: "*filter\n-A INPUT -p tcp --dport 81 -j DROP\n-A INPUT -p tcp --dport 82 -j REJECT\n" +
      "-A INPUT -p udp --dport 54 -j DROP\nCOMMIT\n",
  });
  await lab.exec("cli", ["ip", "route", "add", "unreachable", "192.0.2.0/24"]);

  const [ok, closed, dropped, rejected, unreach, udpOk, udpDropped] = await lab.probeMany([
    { from: "cli", proto: "tcp", ip: srv.ip, port: 80 },
    { from: "cli", proto: "tcp", ip: srv.ip, port: 90 },
    { from: "cli", proto: "tcp", ip: srv.ip, port: 81, timeoutMs: 300 },
    { from: "cli", proto: "tcp", ip: srv.ip, port: 82 },
    { from: "cli", proto: "tcp", ip: "192.0.2.1", port: 80 },
    { from: "cli", proto: "udp", ip: srv.ip, port: 53 },
    { from: "cli", proto: "udp", ip: srv.ip, port: 54, timeoutMs: 300 },
  ]);
  assert.equal(ok.status, "connected");
  assert.equal(ok.reply, `srv ${lab.host("cli").ip}`);
  assert.equal(closed.status, "refused");
  assert.equal(dropped.status, "timeout");
  assert.ok(dropped.ms >= 290, `a timeout waits its full time: ${dropped.ms} ms`);
  assert.equal(rejected.status, "refused");
  assert.equal(unreach.status, "unreachable");
  assert.equal(udpOk.status, "connected");
  assert.equal(udpDropped.status, "timeout");
});

Deno.test("lab: probe agents answer thousands of probes (throughput is printed)", async () => {
  await using lab = await createLab({ nodes: [{ name: "node-1" }, { name: "node-2" }] });
  const pods = [];
  for (let i = 0; i < 4; i++) pods.push(await lab.addPod(i < 2 ? "node-1" : "node-2", { name: `p${i}` }));
  const ports = [80, 81, 82, 83, 84];
  await Promise.all(pods.map((p) => lab.serve(p.name, { tcp: ports, udp: ports })));
  const probes = [];
  for (let round = 0; round < 25; round++) {
    for (const from of pods) {
      for (const to of pods) {
        for (const port of ports) {
          probes.push({
            from: from.name,
            proto: (round % 2 ? "udp" : "tcp") as "tcp" | "udp",
            ip: to.ip,
            port,
          });
        }
      }
    }
  }
  await lab.probeMany(probes.slice(0, 16)); // agents warm
  const t0 = performance.now();
  const results = await lab.probeMany(probes);
  const s = (performance.now() - t0) / 1000;
  const bad = results.filter((r) => r.status !== "connected");
  assert.equal(bad.length, 0, `${bad.length} of ${results.length} failed, e.g. ${JSON.stringify(bad[0])}`);
  console.log(
    `${results.length} probes (TCP+UDP, 4 agents) in ${s.toFixed(2)} s: ${Math.round(results.length / s)}/s`,
  );
});

Deno.test("lab: teardown removes everything, is idempotent, and a failed build leaves nothing", async () => {
  const lab = await createLab({ nodes: [{ name: "node-1" }, { name: "node-2", subnet: "b" }] });
  await lab.addPod("node-1", { name: "x" });
  await lab.addClient("cl");
  await lab.serve("x", { tcp: [80] });
  const names = lab.namespaces;
  assert.equal(names.length, 6); // switch, router, 2 nodes, pod, client
  const live = await liveNamespaces();
  for (const n of names) assert.ok(live.has(n), `${n} exists while the lab is up`);
  await lab.teardown();
  await lab.teardown();
  await assertGone(names);
  await assert.rejects(lab.tcpProbe("x", "10.251.1.2", 80), /torn down/);

  // Bad specs are refused before anything is created (and createLab removes whatever a build
  // failing later had made).
  const before = await liveNamespaces();
  await assert.rejects(createLab({ nodes: [{ name: "n" }, { name: "n" }] }), /taken/);
  await assert.rejects(createLab({ nodes: [{ name: "n", podCidr: "10.251.1.0/33" }] }), /bad CIDR/);
  const after = await liveNamespaces();
  assert.deepEqual([...after].filter((n) => !before.has(n) && n.startsWith("lab-")), []);
});

Deno.test("lab: spawned daemons run inside their host's namespace and stop at teardown", async () => {
  const lab = await createLab({ nodes: [{ name: "node-1" }] });
  let pid: number | undefined;
  try {
    await lab.addPod("node-1", { name: "p" });
    // A TCP daemon other than the probe agent: socat answering "hello" on port 7000 in node-1.
    const d = await lab.spawn("node-1", ["socat", "TCP-LISTEN:7000,fork,reuseaddr", "SYSTEM:echo hello"]);
    pid = d.pid;
    const pids = async () =>
      (await lab.exec("node-1", ["ip", "netns", "pids", lab.netnsOf("node-1")])).stdout;
    let r = await lab.tcpProbe("p", lab.node("node-1").podGateway, 7000);
    for (let i = 0; i < 20 && r.status !== "connected"; i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await lab.tcpProbe("p", lab.node("node-1").podGateway, 7000);
    }
    assert.equal(r.status, "connected");
    assert.equal(r.reply, "hello");
    assert.match(await pids(), new RegExp(`^${pid}$`, "m"));
  } finally {
    await lab.teardown();
  }
  assert.equal(await Deno.stat(`/proc/${pid}`).then(() => "alive", () => "gone"), "gone");
  assert.equal(await Deno.stat(lab.logDir).then(() => "kept", () => "removed"), "removed");
});

Deno.test("lab: a dual-stack lab carries IPv6 between pods, across nodes and through the router", async () => {
  await using lab = await createLab({
    ipv6: true,
    nodes: [{ name: "node-1" }, { name: "node-2" }, { name: "node-3", subnet: "b" }],
  });
  const a = await lab.addPod("node-1", { name: "a" });
  const b = await lab.addPod("node-1", { name: "b" });
  const c = await lab.addPod("node-2", { name: "c" });
  const d = await lab.addPod("node-3", { name: "d" });
  const out = await lab.addClient("out");
  assert.equal(a.ip6, "2001:db8:251:1::2");
  assert.equal(lab.node("node-3").podCidr6, "2001:db8:251:3::/64");
  assert.equal(out.ip6, "2001:db8:250::100"); // RFC 5952 form, as the kernel and Deno print it
  for (const p of [b, c, d]) await lab.serve(p.name, { tcp: [80], udp: [53] });
  const probes = [b, c, d].flatMap((to) => [
    { from: "a", proto: "tcp" as const, ip: to.ip6!, port: 80 },
    { from: "a", proto: "udp" as const, ip: to.ip6!, port: 53 },
    { from: "a", proto: "tcp" as const, ip: to.ip, port: 80 },
  ]);
  probes.push({ from: "out", proto: "tcp", ip: d.ip6!, port: 80 });
  const r = await lab.probeMany(probes);
  assert.deepEqual(r.map((x) => x.status), Array(r.length).fill("connected"), JSON.stringify(r));
  assert.deepEqual(r.map((x) => x.server), ["b", "b", "b", "c", "c", "c", "d", "d", "d", "d"]);
  // Each server saw the family it was reached with, and the client's own address.
  assert.deepEqual(r.map((x) => x.clientIp), [
    ...Array(3).fill([a.ip6, a.ip6, a.ip]).flat(),
    out.ip6,
  ]);
});

Deno.test("lab: removeStaleLabs deletes labs whose owner process is gone and keeps live ones", async () => {
  // A prefix of this test's own, so labs of other tests running at the same time are never candidates.
  const live = await createLab({ prefix: "labst", nodes: [{ name: "node-1" }] });
  const dead = await createLab({ prefix: "labst", nodes: [{ name: "node-1" }] });
  try {
    // Make `dead` look orphaned: its owner file now names a process that has exited.
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    await Deno.writeTextFile(`/tmp/kr-lab-owners/labst-${dead.id}`, `${gone.pid}\n`);
    const removed = await removeStaleLabs("labst");
    assert.deepEqual(removed.sort(), [...dead.namespaces].sort());
    await assertGone(dead.namespaces);
    const now = await liveNamespaces();
    for (const n of live.namespaces) assert.ok(now.has(n), `${n} (live owner) was kept`);
  } finally {
    await dead.teardown(); // "already gone" is fine
    await live.teardown();
  }
});

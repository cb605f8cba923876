// Service semantics of IPVS mode traced through the IPVS MODEL (kernel/ipvs/model.ts), since this
// kernel has no IPVS: plan → desired IPVS table → the `ipvsadm -R` batch we would send → the model
// runs it → packets are traced. A model, not the kernel: it shows our batches express the intended
// semantics under IPVS's documented behaviour, not that a kernel behaves so.
// Addresses: VIPs 10.96.0.0/16, external 198.51.100.0/24, node 192.0.2.10, pods 10.201-202.0.0/24,
// clients 203.0.113.0/24.
import assert from "node:assert/strict";
import { diffTables, IpvsModel, renderBatch } from "../../kernel/ipvs/mod.ts";
import { applyDrain } from "./drain.ts";
import { desiredIpvsTable } from "./ipvs_apply.ts";
import { plan } from "./plan.ts";
import { ep, nodeA, pod, proxyOptions, slice, snapshot, svc } from "./testing.ts";
import type { ProxyPlan } from "./types.ts";

const opts = proxyOptions({ serviceExternalIpRange: ["198.51.100.0/24"] });

function load(m: IpvsModel, p: ProxyPlan): void {
  m.restore(renderBatch(diffTables(m.table, desiredIpvsTable(p), { owned: () => true })));
}

const tcp = (src: string, srcPort: number, dst: string, dstPort: number, fwmark?: number) => ({
  src,
  srcPort,
  dst,
  dstPort,
  protocol: "tcp" as const,
  fwmark,
});

Deno.test("model: ClusterIP spreads new connections over ready endpoints only; terminating ones drain", () => {
  const mk = (terminating: boolean) =>
    plan(
      snapshot({
        services: [svc("web", { clusterIPs: ["10.96.0.10"] })],
        slices: [slice("web", [
          ep("10.201.0.5"),
          ep("10.201.0.6"),
          ep("10.202.0.7", "node-b", terminating ? { ready: false, serving: true, terminating: true } : {}),
          ep("10.202.0.8", "node-b", { ready: false, serving: false }),
        ])],
      }),
      opts,
      nodeA(),
    );
  const m = new IpvsModel();
  load(m, mk(false));
  const seen = new Set<string>();
  for (let i = 0; i < 30; i++) {
    seen.add(m.connect(tcp("10.201.0.100", 1000 + i, "10.96.0.10", 80))!.destination.address);
  }
  assert.deepEqual(
    [...seen].sort(),
    ["10.201.0.5", "10.201.0.6", "10.202.0.7"],
    "not-ready endpoint never used",
  );
  // An open connection to .7, then .7 starts terminating: it keeps that connection, gets no new ones.
  let open = 0;
  while (
    m.connect(tcp("10.201.0.101", 5000 + open, "10.96.0.10", 80))!.destination.address !== "10.202.0.7"
  ) open++;
  load(m, mk(true));
  assert.equal(
    m.connect(tcp("10.201.0.101", 5000 + open, "10.96.0.10", 80))!.destination.address,
    "10.202.0.7",
  );
  for (let i = 0; i < 20; i++) {
    assert.notEqual(
      m.connect(tcp("10.201.0.102", 7000 + i, "10.96.0.10", 80))!.destination.address,
      "10.202.0.7",
    );
  }
});

Deno.test("model: graceful removal keeps a vanished endpoint at weight 0 until its grace period, then removes it", () => {
  const eps = [ep("10.201.0.5"), ep("10.201.0.6")];
  const p0 = plan(
    snapshot({ services: [svc("web", { clusterIPs: ["10.96.0.10"] })], slices: [slice("web", eps)] }),
    opts,
    nodeA(),
  );
  const p1 = plan(
    snapshot({ services: [svc("web", { clusterIPs: ["10.96.0.10"] })], slices: [slice("web", [eps[0]])] }),
    opts,
    nodeA(),
  );
  const o = { gracefulRemoval: true, gracePeriodMs: 30_000, podGraceMs: () => undefined };
  const m = new IpvsModel();
  load(m, p0);
  let port = 0;
  while (
    m.connect(tcp("10.201.0.100", 2000 + port, "10.96.0.10", 80))!.destination.address !== "10.201.0.6"
  ) port++;
  const d = applyDrain(p0, p1, new Map(), 0, o);
  load(m, d.plan);
  assert.equal(
    m.connect(tcp("10.201.0.100", 2000 + port, "10.96.0.10", 80))!.destination.address,
    "10.201.0.6",
  );
  assert.equal(m.connect(tcp("10.201.0.100", 9999, "10.96.0.10", 80))!.destination.address, "10.201.0.5");
  load(m, applyDrain(d.plan, p1, d.state, 30_000, o).plan);
  assert.equal(
    m.connect(tcp("10.201.0.100", 2000 + port, "10.96.0.10", 80))!.destination.address,
    "10.201.0.5",
  );
});

Deno.test("model: ClientIP affinity pins each client; ETP Local NodePort uses local endpoints only", () => {
  const p = plan(
    snapshot({
      services: [
        svc("sticky", {
          clusterIPs: ["10.96.0.11"],
          sessionAffinity: "ClientIP",
          sessionAffinityTimeout: 600,
        }),
        svc("local", {
          type: "NodePort",
          clusterIPs: ["10.96.0.12"],
          externalTrafficPolicy: "Local",
          ports: [{ port: 80, nodePort: 30082 }],
        }),
      ],
      slices: [
        slice("sticky", [ep("10.201.0.5"), ep("10.201.0.6"), ep("10.202.0.7", "node-b")]),
        slice("local", [ep("10.201.0.5"), ep("10.202.0.7", "node-b")]),
      ],
    }),
    opts,
    nodeA(),
  );
  const m = new IpvsModel();
  load(m, p);
  for (const client of ["203.0.113.1", "203.0.113.2", "203.0.113.3"]) {
    const first = m.connect(tcp(client, 1000, "10.96.0.11", 80))!.destination.address;
    for (let i = 1; i < 10; i++) {
      assert.equal(m.connect(tcp(client, 1000 + i, "10.96.0.11", 80))!.destination.address, first);
    }
  }
  for (let i = 0; i < 10; i++) {
    assert.equal(
      m.connect(tcp("203.0.113.9", 3000 + i, "192.0.2.10", 30082))!.destination.address,
      "10.201.0.5",
    );
  }
  const cluster = new Set<string>();
  for (let i = 0; i < 10; i++) {
    cluster.add(m.connect(tcp("10.201.0.100", 4000 + i, "10.96.0.12", 80))!.destination.address);
  }
  assert.equal(cluster.size, 2, "internal traffic still uses every endpoint");
});

Deno.test("model: DSR external IP is a firewall-mark service with tunnel forwarding; unmarked packets miss it", () => {
  const p = plan(
    snapshot({
      services: [svc("dsr", {
        clusterIPs: ["10.96.0.20"],
        externalIPs: ["198.51.100.20"],
        annotations: { "kube-router.io/service.dsr": "tunnel", "kube-router.io/service.scheduler": "mh" },
      })],
      slices: [slice("dsr", [ep("10.201.0.5", "node-a", { targetPod: "default/p" })])],
      pods: [pod("p")],
    }),
    opts,
    nodeA(),
  );
  const m = new IpvsModel();
  load(m, p);
  const mark = p.dsrMarks[0].fwmark;
  assert.equal(m.connect(tcp("203.0.113.1", 1, "198.51.100.20", 80)), undefined);
  const r = m.connect(tcp("203.0.113.1", 1, "198.51.100.20", 80, mark))!;
  assert.equal(r.destination.forward, "tunnel");
  assert.equal(r.destination.address, "10.201.0.5");
  assert.equal(m.connect(tcp("10.201.0.100", 2, "10.96.0.20", 80))!.destination.forward, "masq");
});

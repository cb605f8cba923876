// Conflicting Services in valid API data. Addresses: VIPs 10.96.0.0/12, external IPs
// 198.51.100.0/24, node 192.0.2.10, pods 10.201.0.0/24.
import assert from "node:assert/strict";
import { plan, Planner } from "./plan.ts";
import { ep, nodeA, proxyOptions, slice, snapshot, svc } from "./testing.ts";

const opts = proxyOptions({ serviceExternalIpRange: ["198.51.100.0/24"] });

Deno.test("two Services on one externalIP:port: the oldest wins, the other's REJECT does not block it", () => {
  const older = svc("b-served", {
    clusterIPs: ["10.96.0.20"],
    externalIPs: ["198.51.100.7"],
    creationTimestamp: "2024-01-01T00:00:00Z",
  });
  const newer = svc("a-empty", {
    clusterIPs: ["10.96.0.21"],
    externalIPs: ["198.51.100.7"],
    creationTimestamp: "2024-06-01T00:00:00Z",
  });
  for (const planOnce of [plan, (s: Parameters<typeof plan>[0]) => new Planner().plan(s, opts, nodeA())]) {
    const p = planOnce(
      snapshot({ services: [newer, older], slices: [slice("b-served", [ep("10.201.0.5")])] }),
      opts,
      nodeA(),
    );
    const at = p.services.filter((v) => v.vip === "198.51.100.7");
    assert.deepEqual(at.map((v) => v.service), ["default/b-served"]);
    assert.equal(at[0].realServers.length, 1);
    // The newer, endpoint-less Service keeps its own ClusterIP REJECT but not the shared one.
    assert.deepEqual(p.rejects.map((r) => `${r.service} ${r.vip}`), ["default/a-empty 10.96.0.21"]);
    const w = p.warnings.filter((x) => x.service === "default/a-empty" && /also claimed/.test(x.message));
    assert.equal(w.length, 1);
    assert.match(w[0].message, /198\.51\.100\.7:80\/tcp is also claimed by service default\/b-served/);
  }
});

Deno.test("conflict with unknown ages (manifests): namespace/name decides, deterministically", () => {
  const s1 = svc("x", { clusterIPs: ["10.96.0.30"], externalIPs: ["198.51.100.8"] });
  const s2 = svc("y", { clusterIPs: ["10.96.0.31"], externalIPs: ["198.51.100.8"] });
  const slices = [slice("x", [ep("10.201.0.5")]), slice("y", [ep("10.201.0.6")])];
  const a = plan(snapshot({ services: [s1, s2], slices }), opts, nodeA());
  const b = plan(snapshot({ services: [s2, s1], slices }), opts, nodeA());
  assert.deepEqual(a.services, b.services);
  assert.deepEqual(a.services.filter((v) => v.vip === "198.51.100.8").map((v) => v.service), ["default/x"]);
  // A known age beats an unknown one.
  const c = plan(
    snapshot({ services: [s1, { ...s2, creationTimestamp: "2024-01-01T00:00:00Z" }], slices }),
    opts,
    nodeA(),
  );
  assert.deepEqual(c.services.filter((v) => v.vip === "198.51.100.8").map((v) => v.service), ["default/y"]);
});

Deno.test("no conflict: the plan is untouched", () => {
  const p = plan(
    snapshot({
      services: [svc("x", { clusterIPs: ["10.96.0.30"], externalIPs: ["198.51.100.8"] })],
      slices: [slice("x", [ep("10.201.0.5")])],
    }),
    opts,
    nodeA(),
  );
  assert.equal(p.services.length, 2);
  assert.ok(!p.warnings.some((w) => /also claimed/.test(w.message)));
});

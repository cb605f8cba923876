/** Upstream's metric catalog as the registry exports it. No addresses. */
import assert from "node:assert/strict";
import { MetricsRegistry } from "./metrics.ts";
import { OUR_METRICS, registerCatalog, UPSTREAM_METRICS } from "./upstream_metrics.ts";

Deno.test("catalog: all upstream names with their types, plain series at 0, default buckets", () => {
  assert.equal(UPSTREAM_METRICS.length, 34);
  assert.equal(UPSTREAM_METRICS.filter((m) => m.name.startsWith("kube_router_service_")).length, 10);
  const m = new MetricsRegistry();
  registerCatalog(m, ["router", "proxy", "firewall"]);
  const text = m.render();
  for (const spec of [...UPSTREAM_METRICS, ...OUR_METRICS]) {
    assert.match(text, new RegExp(`^# TYPE ${spec.name} ${spec.type}$`, "m"), spec.name);
    if (spec.type !== "histogram" && spec.labels.length === 0) {
      assert.match(text, new RegExp(`^${spec.name} 0$`, "m"), spec.name);
    }
  }
  // client_golang's DefBuckets.
  const buckets = [...text.matchAll(/^kube_router_controller_routes_sync_time_bucket\{le="([^"]+)"\}/gm)].map(
    (x) => x[1],
  );
  assert.deepEqual(buckets, [
    "0.005",
    "0.01",
    "0.025",
    "0.05",
    "0.1",
    "0.25",
    "0.5",
    "1",
    "2.5",
    "5",
    "10",
    "+Inf",
  ]);
});

Deno.test("catalog: only the running controllers' metrics", () => {
  const m = new MetricsRegistry();
  registerCatalog(m, ["firewall"]);
  const text = m.render();
  assert.match(text, /kube_router_controller_policy_chains /);
  assert.doesNotMatch(text, /kube_router_service_|kube_router_bgp_peer_info/);
  assert.match(text, /kube_router_build_info/);
});

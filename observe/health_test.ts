import assert from "node:assert/strict";
import { healthRoute, HealthTracker } from "./health.ts";
import { MetricsRegistry } from "./metrics.ts";

Deno.test("health: healthy while every controller synced within its period + grace", async () => {
  let now = 0;
  const h = new HealthTracker(0, 1500);
  h.register("firewall", 10_000);
  h.register("proxy", 60_000);
  const route = healthRoute(h, () => now);
  now = 5_000;
  assert.equal(route().status, 200, "start-up allowance");
  h.beat("firewall", 5_000);
  h.beat("proxy", 5_000);
  now = 16_000;
  assert.equal(route().status, 200);
  now = 16_501;
  const res = route();
  assert.equal(res.status, 500);
  assert.match(await res.text(), /firewall/);
  h.beat("firewall", 16_600);
  now = 17_000;
  assert.equal(route().status, 200);
});

Deno.test("metrics: Prometheus text format with labels and histograms", () => {
  const m = new MetricsRegistry();
  m.counter("kube_router_host_routes_added", "Routes added").inc({}, 3);
  m.gauge("kube_router_bgp_peer_info", "Peers").set(1, {
    address: "192.0.2.1",
    state: "Established",
    asn: "65001",
    type: "external",
  });
  m.histogram("kube_router_controller_iptables_sync_time", "Sync time").observe(0.02);
  const text = m.render();
  assert.match(text, /# TYPE kube_router_host_routes_added counter\nkube_router_host_routes_added 3/);
  assert.match(
    text,
    /kube_router_bgp_peer_info\{address="192\.0\.2\.1",asn="65001",state="Established",type="external"\} 1/,
  );
  assert.match(text, /kube_router_controller_iptables_sync_time_bucket\{le="0\.025"\} 1/);
  assert.match(text, /kube_router_controller_iptables_sync_time_count 1/);
});

Deno.test("health: notes are shown under OK without making it unhealthy, and cleared", async () => {
  const t = new HealthTracker(0);
  t.register("firewall", 1000);
  t.beat("firewall", 0);
  t.note("firewall", ["firewall: NetworkPolicy a/web left out (the kernel tool refused it): ..."]);
  const res = healthRoute(t, () => 10)();
  assert.equal(res.status, 200);
  assert.equal(
    await res.text(),
    "OK\nfirewall: NetworkPolicy a/web left out (the kernel tool refused it): ...\n",
  );
  t.note("firewall", []);
  assert.equal(await healthRoute(t, () => 10)().text(), "OK\n");
});

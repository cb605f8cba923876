/** Per-service series from IPVS stats (hand-written samples). Addresses: documentation ranges, 10.96/12. */
import assert from "node:assert/strict";
import { joinStats } from "../../kernel/ipvs/stats.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { publishServiceStats } from "./service_metrics.ts";
import type { VirtualService } from "./types.ts";

const dir = new URL("../../tests/fixtures/ipvs_samples/", import.meta.url);

function vs(service: string, protocol: "TCP" | "UDP", vip: string, port: number, fwmark = 0): VirtualService {
  return {
    key: "",
    family: vip.includes(":") ? 6 : 4,
    kind: "clusterip",
    service,
    portName: "",
    vip,
    protocol,
    port,
    fwmark,
    scheduler: "rr",
    schedFlags: [],
    persistence: 0,
    forward: "masq",
    masquerade: false,
    hairpin: false,
    localOnly: false,
    realServers: [],
  };
}

Deno.test("service metrics: upstream's ten series per virtual service, labelled as upstream", async () => {
  const stats = joinStats(
    await Deno.readTextFile(new URL("stats_exact.txt", dir)),
    await Deno.readTextFile(new URL("rate_exact.txt", dir)),
  );
  const m = new MetricsRegistry();
  const n = publishServiceStats(m, [
    vs("kube-system/kube-dns", "UDP", "10.96.0.10", 53),
    vs("default/kubernetes", "TCP", "2001:db8:96::1", 443),
    vs("shop/web", "TCP", "192.0.2.20", 80, 9134),
    vs("shop/gone", "TCP", "10.96.9.9", 80),
  ], stats);
  assert.equal(n, 3);
  const text = m.render();
  assert.match(
    text,
    /^kube_router_service_total_connections\{port="53",protocol="udp",service_name="kube-dns",service_vip="10\.96\.0\.10",svc_namespace="kube-system"\} 820$/m,
  );
  assert.match(text, /^kube_router_service_bps_out\{[^}]*service_name="kube-dns"[^}]*\} 1680$/m);
  assert.match(text, /^kube_router_service_cps\{[^}]*service_vip="2001:db8:96::1"[^}]*\} 0$/m);
  assert.match(text, /^kube_router_service_bytes_out\{[^}]*service_name="web"[^}]*\} 60000$/m);
  assert.doesNotMatch(text, /gone/);
  // A service that disappears loses its series at the next publish.
  publishServiceStats(m, [], stats);
  assert.doesNotMatch(m.render(), /kube-dns/);
});

/**
 * Allocation unit tests. Addresses: pools in 192.0.2.0/24 and 2001:db8:1b::/120.
 */
import assert from "node:assert/strict";
import type { ServiceInfo } from "../../watch/types.ts";
import { allocate, handles, parsePools } from "./allocate.ts";

function lb(name: string, extra: Partial<ServiceInfo> = {}): ServiceInfo {
  return {
    namespace: "ns",
    name,
    labels: {},
    annotations: {},
    type: "LoadBalancer",
    clusterIPs: ["10.96.0.10"],
    headless: false,
    externalIPs: [],
    loadBalancerIPs: [],
    loadBalancerClass: "kube-router",
    ports: [],
    sessionAffinity: "None",
    sessionAffinityTimeout: 0,
    externalTrafficPolicy: "Cluster",
    internalTrafficPolicy: "Cluster",
    healthCheckNodePort: 0,
    ipFamilies: ["IPv4"],
    ipFamilyPolicy: "SingleStack",
    ...extra,
  };
}

Deno.test("pools: network/broadcast skipped for IPv4, bad entries reported", () => {
  const problems: string[] = [];
  const p = parsePools(["192.0.2.0/30,192.0.2.9/32", "nonsense", "2001:db8:1b::/126"], problems);
  assert.deepEqual(p.map((x) => [x.cidr, x.v6, x.last - x.first + 1n]), [
    ["192.0.2.0/30", false, 2n],
    ["192.0.2.9/32", false, 1n],
    ["2001:db8:1b::/126", true, 4n],
  ]);
  assert.deepEqual(problems, ['flag: --loadbalancer-ip-range: "nonsense" is not a CIDR (e.g. 192.0.2.0/28)']);
});

Deno.test("class handling: kube-router always, none/default only with default class", () => {
  assert.equal(handles(lb("a"), false), true);
  assert.equal(handles(lb("a", { loadBalancerClass: "" }), false), false);
  assert.equal(handles(lb("a", { loadBalancerClass: "" }), true), true);
  assert.equal(handles(lb("a", { loadBalancerClass: "default" }), true), true);
  assert.equal(handles(lb("a", { loadBalancerClass: "other.io/lb" }), true), false);
  assert.equal(handles(lb("a", { type: "ClusterIP" }), true), false);
});

Deno.test("allocation: lowest free, distinct, keeps existing, families by policy", () => {
  const problems: string[] = [];
  const pools = parsePools(["192.0.2.0/29", "2001:db8:1b::/120"], problems);
  const svcs = [
    lb("b"),
    lb("a", { loadBalancerIPs: [{ ip: "192.0.2.1", hostname: "", ipMode: "VIP" }] }),
    lb("c", { ipFamilies: ["IPv6", "IPv4"], ipFamilyPolicy: "PreferDualStack" }),
    lb("d", { ipFamilyPolicy: "RequireDualStack", ipFamilies: ["IPv4", "IPv6"] }),
    lb("e", { loadBalancerClass: "other" }),
    lb("f", { ipFamilies: ["IPv6"] }),
  ];
  assert.deepEqual(allocate(svcs, pools, true, problems), [
    { namespace: "ns", name: "b", ips: ["192.0.2.2"] },
    { namespace: "ns", name: "c", ips: ["2001:db8:1b::", "192.0.2.3"] },
    { namespace: "ns", name: "d", ips: ["192.0.2.4", "2001:db8:1b::1"] },
    { namespace: "ns", name: "f", ips: ["2001:db8:1b::2"] },
  ]);
  assert.deepEqual(problems, []);
  const v4only = parsePools(["192.0.2.0/30"], []);
  const p2: string[] = [];
  assert.deepEqual(
    allocate([lb("d", { ipFamilyPolicy: "RequireDualStack" }), lb("x"), lb("y"), lb("z")], v4only, true, p2),
    [
      { namespace: "ns", name: "x", ips: ["192.0.2.1"] },
      { namespace: "ns", name: "y", ips: ["192.0.2.2"] },
    ],
  );
  assert.deepEqual(p2, [
    "service/ns/d: spec.ipFamilyPolicy: ipFamilyPolicy RequireDualStack needs an IPv6 pool in --loadbalancer-ip-range; not allocated",
    "service/ns/z: no free IPv4 address left in --loadbalancer-ip-range",
  ]);
});

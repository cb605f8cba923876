import assert from "node:assert/strict";
import { ConfigError } from "../errors/mod.ts";
import {
  endpointsFromApi,
  endpointSliceFromApi,
  networkPolicyFromApi,
  podFromApi,
  serviceFromApi,
} from "./convert.ts";

Deno.test("convert: service defaults as the API server fills them", () => {
  const s = serviceFromApi({
    kind: "Service",
    metadata: { name: "web", namespace: "shop" },
    spec: {
      clusterIP: "10.96.0.10",
      ports: [{ port: 80, targetPort: "http" }, { port: 53, protocol: "UDP" }],
    },
  });
  assert.equal(s.type, "ClusterIP");
  assert.deepEqual(s.clusterIPs, ["10.96.0.10"]);
  assert.deepEqual(s.ipFamilies, ["IPv4"]);
  assert.equal(s.ports[0].protocol, "TCP");
  assert.equal(s.ports[0].targetPort, "http");
  assert.equal(s.ports[1].targetPort, 53);
  assert.equal(s.sessionAffinityTimeout, 10800);
  assert.equal(s.externalTrafficPolicy, "Cluster");
  const headless = serviceFromApi({ kind: "Service", metadata: { name: "h" }, spec: { clusterIP: "None" } });
  assert.equal(headless.headless, true);
  assert.deepEqual(headless.clusterIPs, []);
});

Deno.test("convert: a bad field is reported (object, field, value) and drops only what depends on it", () => {
  const problems: string[] = [];
  const s = serviceFromApi({
    kind: "Service",
    metadata: { name: "x", namespace: "n" },
    spec: { clusterIP: "10.96.0.9", ports: [{ port: 70000 }, { port: 80 }] },
  }, (m) => problems.push(m));
  assert.deepEqual(s.ports.map((p) => p.port), [80]);
  assert.deepEqual(s.clusterIPs, ["10.96.0.9"]);
  assert.match(problems[0], /^Service n\/x: spec\.ports\[0\]\.port 70000 is not a port from 1 to 65535/);
  problems.length = 0;
  const p = podFromApi({
    kind: "Pod",
    metadata: { name: "p", namespace: "n" },
    spec: { containers: [{ ports: [{ containerPort: 1, protocol: "ICMP" }, { containerPort: 80 }] }] },
  }, (m) => problems.push(m));
  assert.deepEqual(p.containerPorts.map((c) => c.containerPort), [80]);
  assert.match(
    problems[0],
    /^Pod n\/p: spec\.containers\[0\]\.ports\[0\]\.protocol "ICMP" is not a protocol/,
  );
  // An object that cannot be identified is skipped whole, with a ConfigError.
  assert.throws(
    () => serviceFromApi({ kind: "Service", metadata: { name: "x" }, spec: { type: "Weird" } }),
    (e: Error) => e instanceof ConfigError && /Service x: spec\.type "Weird"/.test(e.message),
  );
});

Deno.test("convert: network policy types are implied like the API does", () => {
  const only = networkPolicyFromApi({
    kind: "NetworkPolicy",
    metadata: { name: "a" },
    spec: { podSelector: {} },
  });
  assert.deepEqual(only.policyTypes, ["Ingress"]);
  const eg = networkPolicyFromApi({
    kind: "NetworkPolicy",
    metadata: { name: "b" },
    spec: {
      podSelector: { matchLabels: { app: "x" } },
      egress: [{
        to: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] } }],
        ports: [{ port: "dns", protocol: "UDP" }, { port: 8000, endPort: 8080 }],
      }],
    },
  });
  assert.deepEqual(eg.policyTypes, ["Ingress", "Egress"]);
  assert.deepEqual(eg.egress[0].peers[0].ipBlock, { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] });
  assert.deepEqual(eg.egress[0].ports, [{ protocol: "UDP", port: "dns" }, {
    protocol: "TCP",
    port: 8000,
    endPort: 8080,
  }]);
});

Deno.test("convert: endpoint conditions default per the API (nil ready = ready, serving = ready)", () => {
  const s = endpointSliceFromApi({
    kind: "EndpointSlice",
    metadata: { name: "web-abc", namespace: "shop", labels: { "kubernetes.io/service-name": "web" } },
    addressType: "IPv4",
    endpoints: [
      { addresses: ["10.244.1.2"], nodeName: "node-1", targetRef: { kind: "Pod", name: "web-1" } },
      { addresses: ["10.244.2.2"], conditions: { ready: false, serving: true, terminating: true } },
    ],
    ports: [{ name: "http", port: 8080 }],
  });
  assert.equal(s.serviceName, "web");
  assert.deepEqual([s.endpoints[0].ready, s.endpoints[0].serving, s.endpoints[0].targetPod], [
    true,
    true,
    "shop/web-1",
  ]);
  assert.deepEqual([s.endpoints[1].ready, s.endpoints[1].serving, s.endpoints[1].terminating], [
    false,
    true,
    true,
  ]);
});

Deno.test("convert: legacy Endpoints become per-family pseudo slices", () => {
  const slices = endpointsFromApi({
    kind: "Endpoints",
    metadata: { name: "web", namespace: "shop" },
    subsets: [{
      addresses: [{ ip: "10.244.1.2" }, { ip: "fd00::2" }],
      notReadyAddresses: [{ ip: "10.244.1.3" }],
      ports: [{ port: 80 }],
    }],
  });
  assert.deepEqual(slices.map((s) => [s.addressType, s.endpoints.map((e) => [e.addresses[0], e.ready])]), [
    ["IPv4", [["10.244.1.2", true], ["10.244.1.3", false]]],
    ["IPv6", [["fd00::2", true]]],
  ]);
});

Deno.test("convert: valid objects (API defaults absent, as in manifests) report nothing", () => {
  const problems: string[] = [];
  const report = (m: string) => problems.push(m);
  serviceFromApi({ kind: "Service", metadata: { name: "a" }, spec: { ports: [{ port: 80 }] } }, report);
  serviceFromApi({ kind: "Service", metadata: { name: "h" }, spec: { clusterIP: "None" } }, report);
  podFromApi({ kind: "Pod", metadata: { name: "p" }, spec: { containers: [{ name: "c" }] } }, report);
  networkPolicyFromApi({ kind: "NetworkPolicy", metadata: { name: "n" }, spec: {} }, report);
  endpointSliceFromApi(
    { kind: "EndpointSlice", metadata: { name: "s" }, endpoints: [], ports: [{}] },
    report,
  );
  // Leading zeros are what the API server itself accepts (decimal): read, canonical, not reported.
  const s = serviceFromApi({
    kind: "Service",
    metadata: { name: "z" },
    spec: { clusterIP: "010.096.000.010", externalIPs: ["2001:DB8::0:1"] },
  }, report);
  assert.deepEqual(s.clusterIPs, ["10.96.0.10"]);
  assert.deepEqual(s.externalIPs, ["2001:db8::1"]);
  assert.deepEqual(problems, []);
});

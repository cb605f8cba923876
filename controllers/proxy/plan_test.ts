// Unit tests of the pure proxy plan. Addresses: service VIPs 10.96.0.0/12 (cluster range),
// external IPs 198.51.100.0/24, LB IPs 203.0.113.0/24 is NOT used (doc range 192.0.2.128/25 is the
// LB range here), node 192.0.2.10, pods 10.201.0.0/24 (node-a) and 10.202.0.0/24 (node-b).
import assert from "node:assert/strict";
import { dsrFwmark, fnv1a32 } from "./annotations.ts";
import { plan, Planner } from "./plan.ts";
import { ep, nodeA, pod, proxyOptions, slice, snapshot, svc } from "./testing.ts";

const opts = proxyOptions({
  serviceExternalIpRange: ["198.51.100.0/24"],
  loadbalancerIpRange: ["192.0.2.128/25"],
});

Deno.test("ClusterIP: one virtual service per VIP/proto/port with ready endpoints at weight 1", () => {
  const p = plan(
    snapshot({
      services: [svc("web", { clusterIPs: ["10.96.0.10"], ports: [{ port: 80 }] })],
      slices: [slice("web", [ep("10.201.0.5"), ep("10.202.0.6", "node-b")])],
    }),
    opts,
    nodeA(),
  );
  assert.equal(p.services.length, 1);
  const vs = p.services[0];
  assert.equal(vs.key, "tcp/10.96.0.10:80");
  assert.equal(vs.scheduler, "rr");
  assert.equal(vs.persistence, 0);
  assert.equal(vs.masquerade, false);
  assert.deepEqual(vs.realServers, [
    { ip: "10.201.0.5", port: 8080, weight: 1, local: true, pod: "" },
    { ip: "10.202.0.6", port: 8080, weight: 1, local: false, pod: "" },
  ]);
  assert.deepEqual(p.dummyAddresses, ["10.96.0.10/32"]);
  assert.deepEqual(p.sets.svip[4], ["10.96.0.10"]);
  assert.deepEqual(p.sets.svipPort[4], ["10.96.0.10,tcp:80"]);
  assert.deepEqual(p.sets.localIps[4], ["10.201.0.1", "192.0.2.10"]);
  assert.deepEqual(p.rejects, []);
});

Deno.test("not-ready endpoints are left out; terminating-but-serving ones drain at weight 0", () => {
  const p = plan(
    snapshot({
      services: [svc("web", { clusterIPs: ["10.96.0.10"] })],
      slices: [slice("web", [
        ep("10.201.0.5"),
        ep("10.201.0.6", "node-a", { ready: false, serving: false }),
        ep("10.201.0.7", "node-a", { ready: false, serving: true, terminating: true }),
      ])],
    }),
    opts,
    nodeA(),
  );
  assert.deepEqual(p.services[0].realServers.map((r) => [r.ip, r.weight]), [["10.201.0.5", 1], [
    "10.201.0.7",
    0,
  ]]);
});

Deno.test("multi-port, UDP and SCTP each get their own virtual service; endpoint ports matched by name", () => {
  const p = plan(
    snapshot({
      services: [svc("dns", {
        clusterIPs: ["10.96.0.53"],
        ports: [
          { name: "dns", port: 53, protocol: "UDP" },
          { name: "dns-tcp", port: 53, protocol: "TCP" },
          { name: "s", port: 9, protocol: "SCTP" },
        ],
      })],
      slices: [slice("dns", [ep("10.201.0.5")], {
        ports: [
          { name: "dns", port: 5353, protocol: "UDP" },
          { name: "dns-tcp", port: 5354, protocol: "TCP" },
          { name: "s", port: 99, protocol: "SCTP" },
        ],
      })],
    }),
    opts,
    nodeA(),
  );
  assert.deepEqual(p.services.map((v) => [v.key, v.realServers[0].port]), [
    ["sctp/10.96.0.53:9", 99],
    ["tcp/10.96.0.53:53", 5354],
    ["udp/10.96.0.53:53", 5353],
  ]);
  assert.deepEqual(p.sets.svipPort[4], ["10.96.0.53,sctp:9", "10.96.0.53,tcp:53", "10.96.0.53,udp:53"]);
});

Deno.test("NodePort on the node IP, or on every local address with --nodeport-bindon-all-ip", () => {
  const snap = snapshot({
    services: [
      svc("np", { type: "NodePort", clusterIPs: ["10.96.0.20"], ports: [{ port: 80, nodePort: 30080 }] }),
    ],
    slices: [slice("np", [ep("10.202.0.6", "node-b")])],
  });
  const p = plan(snap, opts, nodeA());
  assert.deepEqual(p.services.map((v) => [v.key, v.kind, v.masquerade]), [
    ["tcp/10.96.0.20:80", "clusterip", false],
    ["tcp/192.0.2.10:30080", "nodeport", true],
  ]);
  assert.deepEqual(p.dummyAddresses, ["10.96.0.20/32"], "node IPs are not put on kube-dummy-if");
  const all = plan(snap, { ...opts, nodeportBindonAllIp: true }, nodeA());
  assert.deepEqual(all.services.filter((v) => v.kind === "nodeport").map((v) => v.vip), [
    "10.201.0.1",
    "192.0.2.10",
  ]);
});

Deno.test("externalIPs and LB ingress: validated strictly, ipMode Proxy and skiplbips skipped", () => {
  const p = plan(
    snapshot({
      services: [svc("lb", {
        type: "LoadBalancer",
        clusterIPs: ["10.96.0.30"],
        externalIPs: ["198.51.100.7", "203.0.113.9", "10.96.5.5", "not-an-ip"],
        loadBalancerIPs: [
          { ip: "192.0.2.200", hostname: "", ipMode: "VIP" },
          { ip: "192.0.2.201", hostname: "", ipMode: "Proxy" },
          { ip: "198.51.100.99", hostname: "", ipMode: "VIP" },
        ],
        ports: [{ port: 443 }],
      })],
      slices: [slice("lb", [ep("10.201.0.5")])],
    }),
    opts,
    nodeA(),
  );
  assert.deepEqual(p.services.map((v) => [v.vip, v.kind]), [
    ["10.96.0.30", "clusterip"],
    ["192.0.2.200", "loadbalancer"],
    ["198.51.100.7", "externalip"],
  ]);
  const msgs = p.warnings.map((w) => w.message).join("\n");
  assert.match(msgs, /203\.0\.113\.9 is outside --service-external-ip-range/);
  assert.match(msgs, /10\.96\.5\.5 lies inside --service-cluster-ip-range/);
  assert.match(msgs, /"not-an-ip" is not an IP address/);
  assert.match(msgs, /198\.51\.100\.99 is outside --loadbalancer-ip-range/);
  assert.ok(p.warnings.every((w) => w.service === "default/lb"));

  const lax = plan(
    snapshot({
      services: [svc("lb", { clusterIPs: ["10.96.0.30"], externalIPs: ["203.0.113.9"], annotations: {} })],
      slices: [slice("lb", [ep("10.201.0.5")])],
    }),
    { ...opts, strictExternalIpValidation: false },
    nodeA(),
  );
  assert.ok(lax.services.some((v) => v.vip === "203.0.113.9"));

  const skip = plan(
    snapshot({
      services: [svc("lb", {
        clusterIPs: ["10.96.0.30"],
        annotations: { "kube-router.io/service.skiplbips": "" },
        loadBalancerIPs: [{ ip: "192.0.2.200", hostname: "", ipMode: "VIP" }],
      })],
      slices: [slice("lb", [ep("10.201.0.5")])],
    }),
    opts,
    nodeA(),
  );
  assert.deepEqual(skip.services.map((v) => v.kind), ["clusterip"]);
});

Deno.test("dual-stack: one virtual service per family, endpoints of the matching family only", () => {
  const p = plan(
    snapshot({
      services: [svc("ds", { clusterIPs: ["10.96.0.40", "2001:db8:96::40"], ipFamilies: ["IPv4", "IPv6"] })],
      slices: [
        slice("ds", [ep("10.201.0.5")]),
        slice("ds", [ep("2001:db8:201::5")], { addressType: "IPv6", name: "ds-v6" }),
        slice("ds", [ep("pod.example")], { addressType: "FQDN", name: "ds-fqdn" }),
      ],
    }),
    { ...opts, enableIpv6: true },
    nodeA({ ipv6: "2001:db8::10" }),
  );
  assert.deepEqual(p.services.map((v) => [v.key, v.family, v.realServers.map((r) => r.ip)]), [
    ["tcp/10.96.0.40:80", 4, ["10.201.0.5"]],
    ["tcp/[2001:db8:96::40]:80", 6, ["2001:db8:201::5"]],
  ]);
  assert.deepEqual(p.dummyAddresses, ["10.96.0.40/32", "2001:db8:96::40/128"]);
  const v4only = plan(
    snapshot({
      services: [svc("ds", { clusterIPs: ["10.96.0.40", "2001:db8:96::40"] })],
      slices: [slice("ds", [ep("10.201.0.5")])],
    }),
    opts,
    nodeA(),
  );
  assert.equal(v4only.services.length, 1, "IPv6 is off by default (--enable-ipv6=false)");
});

Deno.test("ClientIP affinity → persistence with the service's timeout", () => {
  const p = plan(
    snapshot({
      services: [
        svc("s", { clusterIPs: ["10.96.0.50"], sessionAffinity: "ClientIP", sessionAffinityTimeout: 600 }),
      ],
      slices: [slice("s", [ep("10.201.0.5")])],
    }),
    opts,
    nodeA(),
  );
  assert.equal(p.services[0].persistence, 600);
});

Deno.test("schedulers by annotation; unknown → rr with a warning; flags only with mh", () => {
  const mk = (name: string, annotations: Record<string, string>) =>
    svc(name, { clusterIPs: [`10.96.1.${name.length}`], annotations });
  const p = plan(
    snapshot({
      services: [
        mk("a", { "kube-router.io/service.scheduler": "lc" }),
        mk("bb", { "kube-router.io/service.scheduler": "wat" }),
        mk("ccc", {
          "kube-router.io/service.scheduler": "mh",
          "kube-router.io/service.schedflags": "flag-1,flag-2,bogus",
        }),
        mk("dddd", {
          "kube-router.io/service.scheduler": "sh",
          "kube-router.io/service.schedflags": "flag-1",
        }),
      ],
      slices: ["a", "bb", "ccc", "dddd"].map((n) => slice(n, [ep("10.201.0.5")])),
    }),
    opts,
    nodeA(),
  );
  const by = new Map(p.services.map((v) => [v.service, v]));
  assert.equal(by.get("default/a")!.scheduler, "lc");
  assert.equal(by.get("default/bb")!.scheduler, "rr");
  assert.equal(by.get("default/ccc")!.scheduler, "mh");
  assert.deepEqual(by.get("default/ccc")!.schedFlags, ["flag-1", "flag-2"]);
  assert.deepEqual(by.get("default/dddd")!.schedFlags, []);
  const w = p.warnings.map((x) => `${x.service} ${x.field}: ${x.message}`);
  assert.ok(
    w.some((m) =>
      m.startsWith("default/bb annotations[kube-router.io/service.scheduler]: unknown scheduler")
    ),
  );
  assert.ok(w.some((m) => m.startsWith("default/ccc") && m.includes("bogus")));
  assert.ok(w.some((m) => m.startsWith("default/dddd") && m.includes("only honoured with scheduler mh")));
});

Deno.test("hairpin by annotation or --hairpin-mode; externalIPs only with hairpin.externalips", () => {
  const s = (annotations: Record<string, string>) =>
    snapshot({
      services: [svc("h", {
        type: "NodePort",
        clusterIPs: ["10.96.0.60"],
        externalIPs: ["198.51.100.60"],
        annotations,
        ports: [{ port: 80, nodePort: 30060 }],
      })],
      slices: [slice("h", [ep("10.201.0.5")])],
    });
  const kinds = (p: ReturnType<typeof plan>) => p.services.filter((v) => v.hairpin).map((v) => v.kind);
  assert.deepEqual(kinds(plan(s({}), opts, nodeA())), []);
  assert.deepEqual(kinds(plan(s({ "kube-router.io/service.hairpin": "" }), opts, nodeA())), [
    "clusterip",
    "nodeport",
  ]);
  assert.deepEqual(kinds(plan(s({}), { ...opts, hairpinMode: true }, nodeA())), ["clusterip", "nodeport"]);
  assert.deepEqual(
    kinds(
      plan(
        s({ "kube-router.io/service.hairpin": "", "kube-router.io/service.hairpin.externalips": "" }),
        opts,
        nodeA(),
      ),
    ),
    ["clusterip", "nodeport", "externalip"],
  );
});

Deno.test("--masquerade-all marks every virtual service for SNAT", () => {
  const p = plan(
    snapshot({
      services: [svc("m", { clusterIPs: ["10.96.0.70"] })],
      slices: [slice("m", [ep("10.201.0.5")])],
    }),
    { ...opts, masqueradeAll: true },
    nodeA(),
  );
  assert.equal(p.services[0].masquerade, true);
});

Deno.test("externalTrafficPolicy Local / service.local: local endpoints only, no SNAT, skipped if none local", () => {
  const mk = (o: Parameters<typeof svc>[1]) =>
    svc("l", {
      type: "NodePort",
      clusterIPs: ["10.96.0.80"],
      externalIPs: ["198.51.100.80"],
      ports: [{ port: 80, nodePort: 30080 }],
      healthCheckNodePort: 32000,
      ...o,
    });
  const slices = [slice("l", [ep("10.201.0.5"), ep("10.202.0.6", "node-b")])];
  for (
    const s of [
      mk({ externalTrafficPolicy: "Local" }),
      mk({ annotations: { "kube-router.io/service.local": "true" } }),
    ]
  ) {
    const p = plan(snapshot({ services: [s], slices }), opts, nodeA());
    const byKind = new Map(p.services.map((v) => [v.kind, v]));
    assert.deepEqual(byKind.get("clusterip")!.realServers.map((r) => r.ip), ["10.201.0.5", "10.202.0.6"]);
    for (const k of ["nodeport", "externalip"] as const) {
      assert.deepEqual(byKind.get(k)!.realServers.map((r) => r.ip), ["10.201.0.5"]);
      assert.equal(byKind.get(k)!.masquerade, false);
      assert.equal(byKind.get(k)!.localOnly, true);
    }
    assert.deepEqual(p.healthChecks, [{ service: "default/l", port: 32000, localEndpoints: 1 }]);
  }
  const onB = plan(
    snapshot({ services: [mk({ externalTrafficPolicy: "Local" })], slices }),
    opts,
    nodeA({ name: "node-c" }),
  );
  assert.deepEqual(
    onB.services.map((v) => v.kind),
    ["clusterip"],
    "no local endpoint: external VIPs skipped",
  );
  assert.deepEqual(onB.healthChecks, [{ service: "default/l", port: 32000, localEndpoints: 0 }]);
  assert.deepEqual(onB.rejects, []);
});

Deno.test("internalTrafficPolicy Local: ClusterIP uses local endpoints only", () => {
  const p = plan(
    snapshot({
      services: [svc("i", { clusterIPs: ["10.96.0.90"], internalTrafficPolicy: "Local" })],
      slices: [slice("i", [ep("10.201.0.5"), ep("10.202.0.6", "node-b")])],
    }),
    opts,
    nodeA(),
  );
  assert.deepEqual(p.services[0].realServers.map((r) => r.ip), ["10.201.0.5"]);
});

Deno.test("DSR tunnel: fwmark services for external IPs only, upstream FNV-1a marks; bad value falls back", () => {
  const s = (dsr: string, pods = [pod("p1")]) =>
    snapshot({
      services: [svc("d", {
        clusterIPs: ["10.96.0.100"],
        externalIPs: ["198.51.100.100"],
        annotations: { "kube-router.io/service.dsr": dsr },
      })],
      slices: [slice("d", [ep("10.201.0.5", "node-a", { targetPod: "default/p1" })])],
      pods,
    });
  const p = plan(s("tunnel"), opts, nodeA());
  const ext = p.services.find((v) => v.kind === "externalip")!;
  const mark = fnv1a32("198.51.100.100-tcp-80") & 0x3fff;
  assert.equal(ext.fwmark, mark);
  assert.equal(ext.key, `fwm/${mark}/v4`);
  assert.equal(ext.forward, "tunnel");
  assert.deepEqual(p.dsrMarks, [{
    service: "default/d",
    family: 4,
    vip: "198.51.100.100",
    protocol: "TCP",
    port: 80,
    fwmark: mark,
  }]);
  assert.deepEqual(
    p.dummyAddresses,
    ["10.96.0.100/32"],
    "DSR VIP is not on kube-dummy-if (VIP-less director)",
  );
  assert.equal(p.services.find((v) => v.kind === "clusterip")!.fwmark, 0);

  const bad = plan(s("direct"), opts, nodeA());
  assert.equal(bad.services.find((v) => v.kind === "externalip")!.fwmark, 0);
  assert.match(bad.warnings[0].message, /unsupported DSR mode "direct".*accepted: tunnel/);

  const hostNet = plan(s("tunnel", [pod("p1", { hostNetwork: true })]), opts, nodeA());
  assert.equal(hostNet.services.find((v) => v.kind === "externalip")!.fwmark, 0);
  assert.match(hostNet.warnings[0].message, /hostNetwork/);
});

Deno.test("dsrFwmark: FNV-1a known vectors and collision handling by suffix", () => {
  assert.equal(fnv1a32(""), 0x811c9dc5);
  assert.equal(fnv1a32("a"), 0xe40c292c);
  assert.equal(fnv1a32("foobar"), 0xbf9cf968);
  const taken = new Map<number, string>();
  const m1 = dsrFwmark("198.51.100.1", "TCP", 80, taken);
  taken.set(dsrFwmark("198.51.100.2", "tcp", 80, new Map()), "someone-else");
  const again = dsrFwmark("198.51.100.1", "tcp", 80, taken);
  assert.equal(again, m1, "same id keeps its mark");
  const clash = new Map<number, string>([[fnv1a32("198.51.100.3-udp-53") & 0x3fff, "other"]]);
  assert.equal(dsrFwmark("198.51.100.3", "udp", 53, clash), fnv1a32("198.51.100.3-udp-53-1") & 0x3fff);
});

Deno.test("service-proxy-name for another proxy, headless and ExternalName services are ignored", () => {
  const p = plan(
    snapshot({
      services: [
        svc("other", {
          clusterIPs: ["10.96.0.110"],
          labels: { "service.kubernetes.io/service-proxy-name": "cilium" },
        }),
        svc("ours", {
          clusterIPs: ["10.96.0.111"],
          labels: { "service.kubernetes.io/service-proxy-name": "kube-router" },
        }),
        svc("hl", { headless: true }),
        svc("hl2", { clusterIPs: ["10.96.0.112"], labels: { "service.kubernetes.io/headless": "" } }),
        svc("en", { type: "ExternalName" }),
      ],
      slices: ["other", "ours", "hl", "hl2", "en"].map((n) => slice(n, [ep("10.201.0.5")])),
    }),
    opts,
    nodeA(),
  );
  assert.deepEqual(p.services.map((v) => v.service), ["default/ours"]);
});

Deno.test("no endpoints → reject entry and a warning; port out of range → that port skipped, rest served", () => {
  const p = plan(
    snapshot({
      services: [
        svc("empty", { clusterIPs: ["10.96.0.120"] }),
        svc("bad", {
          clusterIPs: ["10.96.0.121"],
          ports: [{ port: 70000, name: "x" }, { port: 81, name: "y" }],
        }),
      ],
      slices: [slice("bad", [ep("10.201.0.5")], { ports: [{ name: "y", port: 8081, protocol: "TCP" }] })],
    }),
    opts,
    nodeA(),
  );
  assert.deepEqual(p.rejects, [{
    service: "default/empty",
    family: 4,
    vip: "10.96.0.120",
    protocol: "TCP",
    port: 80,
  }]);
  // Services come in service-key order ("default/bad" before "default/empty").
  assert.deepEqual(p.services.map((v) => v.key), ["tcp/10.96.0.121:81", "tcp/10.96.0.120:80"]);
  const w = p.warnings.map((x) => `${x.service} ${x.field}: ${x.message}`);
  assert.ok(w.includes("default/empty endpoints: service has no ready endpoints; traffic to it is rejected"));
  assert.ok(w.includes("default/bad spec.ports[x].port: port 70000 out of range 1-65535; port skipped"));
});

Deno.test("IPVS timeouts are passed in seconds; the plan is deterministic", () => {
  const snap = snapshot({
    services: [svc("b", { clusterIPs: ["10.96.0.2"] }), svc("a", { clusterIPs: ["10.96.0.1"] })],
    slices: [slice("a", [ep("10.201.0.9"), ep("10.201.0.5")]), slice("b", [ep("10.201.0.5")])],
  });
  const o = {
    ...opts,
    serviceTcpTimeout: 900_000,
    serviceTcpfinTimeout: 120_000,
    serviceUdpTimeout: 300_000,
  };
  const p = plan(snap, o, nodeA());
  assert.deepEqual(p.timeouts, { tcp: 900, tcpfin: 120, udp: 300 });
  assert.deepEqual(plan(snap, o, nodeA()), p);
  assert.deepEqual(p.services.map((v) => v.key), ["tcp/10.96.0.1:80", "tcp/10.96.0.2:80"]);
});

Deno.test("Planner: reuses unchanged services and gives exactly what plan() gives, across changes", () => {
  const services = Array.from({ length: 30 }, (_, i) =>
    svc(`s${i}`, {
      clusterIPs: [`10.96.2.${i}`],
      ...(i % 7 === 0
        ? { annotations: { "kube-router.io/service.dsr": "tunnel" }, externalIPs: [`198.51.100.${i}`] }
        : {}),
      ...(i % 5 === 0 ? { sessionAffinity: "ClientIP" as const, sessionAffinityTimeout: 60 } : {}),
    }));
  let slices = services.map((s, i) => ({
    ...slice(s.name, [ep(`10.201.1.${i}`), ep(`10.202.1.${i}`, "node-b")]),
    name: `${s.name}-x`,
  }));
  const planner = new Planner();
  let snap = snapshot({ services, slices });
  const first = planner.plan(snap, opts, nodeA());
  assert.deepEqual(first, plan(snap, opts, nodeA()));
  const again = planner.plan({ ...snap, revision: 2 }, opts, nodeA());
  const dsr = new Set(
    services.filter((s) => s.annotations["kube-router.io/service.dsr"]).map((s) => `default/${s.name}`),
  );
  assert.ok(
    again.services.every((v, i) => v === first.services[i] || dsr.has(v.service)),
    "unchanged VS objects reused",
  );
  for (let k = 0; k < 10; k++) {
    slices = slices.map((s, i) => i === (k * 7) % 30 ? { ...s, endpoints: [ep(`10.201.9.${k}`)] } : s);
    const svcs = k === 5 ? services.slice(1) : services;
    snap = snapshot({ services: svcs, slices, revision: 3 + k });
    assert.deepEqual(planner.plan(snap, opts, nodeA()), plan(snap, opts, nodeA()), `change ${k}`);
  }
  assert.deepEqual(
    planner.plan(snap, { ...opts, masqueradeAll: true }, nodeA()),
    plan(snap, { ...opts, masqueradeAll: true }, nodeA()),
  );
});

// Unit tests of the ipvsadm codec, diff and the IPVS MODEL. No kernel here has IPVS: the samples in
// tests/fixtures/ipvs_samples/ are hand-written in ipvsadm 1.31's save format (see their README).
// Addresses: VIPs 10.96.0.0/12, pods 10.201-202.0.0/24, node 192.0.2.10, foreign 198.51.100.0/24.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  cloneTable,
  diffTables,
  type IpvsDestination,
  IpvsModel,
  IpvsModelError,
  IpvsParseError,
  type IpvsService,
  ipvsServiceKey,
  type IpvsTable,
  parseCommand,
  parseSave,
  parseTimeouts,
  renderBatch,
  renderSave,
} from "./mod.ts";

const samples = new URL("../../tests/fixtures/ipvs_samples/", import.meta.url);
const read = (name: string) => Deno.readTextFileSync(new URL(name, samples));

Deno.test("parseSave reads a kube-router node's table (hand-written sample)", () => {
  const t = parseSave(read("kube_router_node.txt"));
  assert.deepEqual([...t.keys()].sort(), [
    "fwm/9134/v4",
    "sctp/10.96.0.77:9",
    "tcp/10.96.0.10:53",
    "tcp/10.96.0.1:443",
    "tcp/10.96.12.40:80",
    "tcp/192.0.2.10:30080",
    "tcp/192.0.2.250:80",
    "tcp/[2001:db8:96::1]:443",
    "udp/10.96.0.10:53",
  ]);
  const p = t.get("tcp/10.96.12.40:80")!;
  assert.equal(p.service.persistence, 10800);
  assert.equal(p.destinations.get("10.201.0.8:8080")!.weight, 0);
  const fw = t.get("fwm/9134/v4")!;
  assert.deepEqual(fw.service.schedFlags, [1, 2]);
  assert.equal(fw.service.scheduler, "mh");
  assert.deepEqual([...fw.destinations.values()].map((d) => [d.forward, d.tunType]), [
    ["tunnel", undefined],
    ["tunnel", undefined],
  ]);
  const v6 = t.get("tcp/[2001:db8:96::1]:443")!;
  assert.deepEqual(v6.service, {
    family: 6,
    protocol: "tcp",
    address: "2001:db8:96::1",
    port: 443,
    fwmark: 0,
    scheduler: "rr",
    schedFlags: [],
    ops: false,
  });
  assert.equal(t.get("tcp/192.0.2.250:80")!.destinations.get("192.0.2.251:80")!.forward, "route");
});

Deno.test("parseSave reads ipvsadm -Sn as captured from Debian's 6.1 kernel, and renders it back", () => {
  // Captured inside the test VM by tests/vm/proxy_ipvs.ts (see the samples' README).
  const text = read("captured_debian_6.1.txt");
  const t = parseSave(text);
  assert.equal(t.size, 26);
  const mh = [...t.values()].find((e) => e.service.scheduler === "mh" && e.service.schedFlags.length)!;
  assert.deepEqual(
    mh.service.schedFlags,
    [1, 2],
    "the kernel reads flag-1,flag-2 back as mh-fallback,mh-port",
  );
  const fw = t.get("fwm/8191/v4")!;
  assert.deepEqual([...fw.destinations.values()].map((d) => [d.forward, d.tunType, d.port]), [
    ["tunnel", undefined, 80],
    ["tunnel", undefined, 80],
  ], "`--tun-type ipip` (printed by the kernel) is the default tunnel");
  assert.equal([...t.keys()].filter((k) => k.startsWith("sctp/")).length, 1);
  assert.deepEqual(parseSave(renderSave(t)), t, "render → parse is the identity");
});

Deno.test("parseSave reads foreign features (netmask, pe, thresholds, gue, sh flags, v6 fwmark)", () => {
  const t = parseSave(read("foreign_features.txt"));
  const a = t.get("tcp/198.51.100.20:443")!;
  assert.equal(a.service.netmask, "255.255.255.0");
  assert.equal(a.service.persistence, 600);
  assert.deepEqual(
    {
      x: a.destinations.get("198.51.100.21:443")!.upperThreshold,
      y: a.destinations.get("198.51.100.21:443")!.lowerThreshold,
    },
    { x: 1000, y: 800 },
  );
  assert.equal(t.get("udp/198.51.100.30:5060")!.service.pe, "sip");
  const g = t.get("tcp/198.51.100.40:80")!;
  assert.deepEqual(g.service.schedFlags, [1, 2]);
  assert.deepEqual(g.destinations.get("198.51.100.41:80"), {
    address: "198.51.100.41",
    port: 80,
    forward: "tunnel",
    weight: 1,
    upperThreshold: 0,
    lowerThreshold: 0,
    tunType: "gue",
    tunPort: 6080,
  });
  const f6 = t.get("fwm/77/v6")!;
  assert.equal(f6.service.netmask, "64");
  assert.deepEqual([...f6.destinations.keys()], ["[2001:db8:1::5]:0"]);
  assert.deepEqual(t.get("tcp/[2001:db8:2::1]:80")!.service.schedFlags, [3]);
  assert.equal(parseSave(read("empty.txt")).size, 0);
});

Deno.test("samples survive parse → render → parse unchanged", () => {
  for (const f of ["kube_router_node.txt", "foreign_features.txt"]) {
    const t = parseSave(read(f));
    assert.deepEqual(parseSave(renderSave(t)), t, f);
  }
});

Deno.test("parse errors name the line and what is accepted", () => {
  assert.throws(() => parseCommand("-A -t 10.0.0.1:80 -s rr -b bogus"), (e: Error) => {
    assert.ok(e instanceof IpvsParseError);
    assert.match(
      e.message,
      /"-A -t 10.0.0.1:80 -s rr -b bogus".*unknown scheduler flag "bogus"; accepted: flag-1/,
    );
    return true;
  });
  assert.throws(() => parseCommand("-A -s rr"), /no virtual service/);
  assert.throws(() => parseCommand("-a -t 10.0.0.1:99999 -r 1.2.3.4:1"), /port 99999 out of range/);
  assert.throws(() => parseSave("-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 1"), /not listed before it/);
  assert.throws(() => parseCommand("-X -t 10.0.0.1:80"), /unknown command "-X"/);
  assert.deepEqual(parseCommand("ipvsadm -D -u [2001:db8::1]:53"), {
    op: "delete-service",
    ref: { family: 6, protocol: "udp", address: "2001:db8::1", port: 53, fwmark: 0 },
  });
});

Deno.test("parseTimeouts reads ipvsadm -L --timeout", () => {
  assert.deepEqual(parseTimeouts("Timeout (tcp tcpfin udp): 900 120 300\n"), {
    tcp: 900,
    tcpfin: 120,
    udp: 300,
  });
  assert.equal(parseTimeouts("garbage"), undefined);
});

function svc(key: Partial<IpvsService> & { address: string; port: number }): IpvsService {
  return { family: 4, protocol: "tcp", fwmark: 0, scheduler: "rr", schedFlags: [], ops: false, ...key };
}
function dest(address: string, port: number, weight = 1): IpvsDestination {
  return { address, port, forward: "masq", weight, upperThreshold: 0, lowerThreshold: 0 };
}
function table(...entries: Array<[IpvsService, IpvsDestination[]]>): IpvsTable {
  return new Map(entries.map(([s, ds]) => [ipvsServiceKey(s), {
    service: s,
    destinations: new Map(ds.map((d) => [`${d.address}:${d.port}`, d])),
  }]));
}

Deno.test("diff → one batch: golden (adds, edits, weight-0 drain, deletes; foreign untouched)", () => {
  const current = table(
    [svc({ address: "10.96.0.1", port: 443 }), [dest("192.0.2.10", 6443)]],
    [svc({ address: "10.96.0.2", port: 80 }), [dest("10.201.0.5", 8080), dest("10.201.0.6", 8080)]],
    [svc({ address: "10.96.0.3", port: 80 }), [dest("10.201.0.5", 8080)]],
    [svc({ address: "192.0.2.250", port: 80, scheduler: "wrr" }), [dest("192.0.2.251", 80)]],
  );
  const desired = table(
    [svc({ address: "10.96.0.1", port: 443 }), [dest("192.0.2.10", 6443)]],
    [svc({ address: "10.96.0.2", port: 80, persistence: 10800 }), [
      dest("10.201.0.5", 8080, 0),
      dest("10.201.0.7", 8080),
    ]],
    [svc({ address: "10.96.0.4", port: 53, protocol: "udp" }), [dest("10.201.0.9", 53)]],
  );
  const owned = (s: IpvsService) => s.address !== "192.0.2.250";
  const batch = renderBatch(diffTables(current, desired, { owned }));
  assert.equal(
    batch,
    [
      "-D -t 10.96.0.3:80",
      "-E -t 10.96.0.2:80 -s rr -p 10800",
      "-A -u 10.96.0.4:53 -s rr",
      "-d -t 10.96.0.2:80 -r 10.201.0.6:8080",
      "-e -t 10.96.0.2:80 -r 10.201.0.5:8080 -m -w 0",
      "-a -t 10.96.0.2:80 -r 10.201.0.7:8080 -m -w 1",
      "-a -u 10.96.0.4:53 -r 10.201.0.9:53 -m -w 1",
    ].join("\n") + "\n",
  );
  assert.equal(renderBatch(diffTables(desired, desired, { owned })), "", "no change → empty batch");

  // The batch, run on the model of the kernel's table, produces the desired table (plus the foreign one).
  const m = new IpvsModel();
  m.table = cloneTable(current);
  m.restore(batch);
  const expected = cloneTable(desired);
  expected.set("tcp/192.0.2.250:80", current.get("tcp/192.0.2.250:80")!);
  assert.deepEqual(m.table, expected);
});

Deno.test("golden: DSR fwmark service with mh flags, IPv6 and SCTP render as ipvsadm reads them", () => {
  const desired = table(
    [svc({ address: "", port: 0, fwmark: 9134, protocol: undefined, scheduler: "mh", schedFlags: [1, 2] }), [
      { ...dest("10.201.0.7", 8080), forward: "tunnel" },
    ]],
    [svc({ family: 6, address: "2001:db8:96::1", port: 443 }), [dest("2001:db8::10", 6443)]],
    [svc({ protocol: "sctp", address: "10.96.0.77", port: 9 }), [dest("10.201.0.11", 9999)]],
  );
  desired.get("tcp/[2001:db8:96::1]:443")!.destinations = new Map([[
    "[2001:db8::10]:6443",
    dest("2001:db8::10", 6443),
  ]]);
  const batch = renderBatch(diffTables(new Map(), desired, { owned: () => true }));
  assert.equal(
    batch,
    [
      "-A -f 9134 -s mh -b mh-fallback,mh-port",
      "-A --sctp-service 10.96.0.77:9 -s rr",
      "-A -t [2001:db8:96::1]:443 -s rr",
      "-a -f 9134 -r 10.201.0.7:8080 -i -w 1",
      "-a --sctp-service 10.96.0.77:9 -r 10.201.0.11:9999 -m -w 1",
      "-a -t [2001:db8:96::1]:443 -r [2001:db8::10]:6443 -m -w 1",
    ].join("\n") + "\n",
  );
});

// Arbitrary tables in the subset of ipvsadm's format that round-trips exactly.
const ip4 = fc.tuple(
  fc.integer({ min: 1, max: 223 }),
  fc.nat(255),
  fc.nat(255),
  fc.integer({ min: 1, max: 254 }),
)
  .map((o) => o.join("."));
const ip6 = fc.array(fc.integer({ min: 1, max: 0xffff }), { minLength: 8, maxLength: 8 })
  .map((g) => g.map((x) => x.toString(16)).join(":"));
const port = fc.integer({ min: 1, max: 65535 });
const destArb = (family: 4 | 6) =>
  fc.record({
    address: family === 4 ? ip4 : ip6,
    port,
    forward: fc.constantFrom("masq" as const, "tunnel" as const, "route" as const),
    weight: fc.nat(100),
    upperThreshold: fc.nat(65535),
    lowerThreshold: fc.nat(65535),
  });
const entryArb = fc.integer({ min: 4, max: 6 }).filter((f) => f !== 5).chain((family) =>
  fc.record({
    service: fc.record({
      family: fc.constant(family as 4 | 6),
      fwmark: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 0x3fff })),
      protocol: fc.constantFrom("tcp" as const, "udp" as const, "sctp" as const),
      address: family === 4 ? ip4 : ip6,
      port,
      scheduler: fc.constantFrom("rr", "lc", "dh", "sh", "mh", "wlc"),
      persistence: fc.option(fc.integer({ min: 1, max: 86400 }), { nil: undefined }),
      schedFlags: fc.subarray([1, 2, 3]),
      ops: fc.boolean(),
    }),
    dests: fc.array(destArb(family as 4 | 6), { maxLength: 4 }),
  })
);

function toTable(
  entries: Array<{ service: IpvsService & { persistence?: number }; dests: IpvsDestination[] }>,
) {
  const t: IpvsTable = new Map();
  for (const e of entries) {
    const s: IpvsService = { ...e.service };
    if (s.persistence === undefined) delete s.persistence;
    if (s.fwmark) {
      delete s.protocol;
      delete s.address;
      s.port = 0;
    }
    t.set(ipvsServiceKey(s), {
      service: s,
      destinations: new Map(
        e.dests.map((
          d,
        ) => [d.address.includes(":") ? `[${d.address}]:${d.port}` : `${d.address}:${d.port}`, { ...d }]),
      ),
    });
  }
  return t;
}

Deno.test("property: render → parse is the identity on tables", () => {
  fc.assert(
    fc.property(fc.array(entryArb, { maxLength: 6 }), (entries) => {
      const t = toTable(entries);
      assert.deepEqual(parseSave(renderSave(t)), t);
    }),
    { numRuns: 300 },
  );
});

Deno.test("property: diff batch applied to the model turns any owned table into the desired one", () => {
  fc.assert(
    fc.property(fc.array(entryArb, { maxLength: 5 }), fc.array(entryArb, { maxLength: 5 }), (a, b) => {
      const current = toTable(a), desired = toTable(b);
      const m = new IpvsModel();
      m.table = cloneTable(current);
      m.restore(renderBatch(diffTables(current, desired, { owned: () => true })));
      assert.deepEqual(m.table, desired);
      assert.equal(renderBatch(diffTables(m.table, desired, { owned: () => true })), "");
    }),
    { numRuns: 200 },
  );
});

Deno.test("model (not the kernel): rr spreads over weight>0 servers, drains keep existing connections", () => {
  const m = new IpvsModel();
  m.restore([
    "-A -t 10.96.0.2:80 -s rr",
    "-a -t 10.96.0.2:80 -r 10.201.0.5:8080 -m -w 1",
    "-a -t 10.96.0.2:80 -r 10.201.0.6:8080 -m -w 1",
    "-a -t 10.96.0.2:80 -r 10.201.0.7:8080 -m -w 1",
  ].join("\n"));
  const pkt = (srcPort: number) => ({
    src: "10.201.0.100",
    srcPort,
    dst: "10.96.0.2",
    dstPort: 80,
    protocol: "tcp" as const,
  });
  const seen = new Map<string, number>();
  for (let i = 0; i < 30; i++) {
    const r = m.connect(pkt(40000 + i))!;
    seen.set(r.destination.address, (seen.get(r.destination.address) ?? 0) + 1);
  }
  assert.deepEqual([...seen.values()], [10, 10, 10]);
  const old = m.connect(pkt(40000))!;
  assert.equal(old.reused, true);
  m.restore(`-e -t 10.96.0.2:80 -r ${old.destination.address}:8080 -m -w 0`);
  assert.equal(
    m.connect(pkt(40000))!.destination.address,
    old.destination.address,
    "existing connection drains",
  );
  for (let i = 100; i < 120; i++) {
    assert.notEqual(m.connect(pkt(i))!.destination.address, old.destination.address);
  }
  m.restore(`-d -t 10.96.0.2:80 -r ${old.destination.address}:8080`);
  assert.notEqual(m.connect(pkt(40000))!.destination.address, old.destination.address, "expire_nodest_conn");
  assert.equal(m.connect({ ...pkt(1), dstPort: 81 }), undefined, "no virtual service → not IPVS's packet");
});

Deno.test("model: persistence pins a client to one server until the template expires", () => {
  const m = new IpvsModel();
  m.restore([
    "-A -t 10.96.0.3:80 -s rr -p 60",
    "-a -t 10.96.0.3:80 -r 10.201.0.5:8080 -m -w 1",
    "-a -t 10.96.0.3:80 -r 10.201.0.6:8080 -m -w 1",
  ].join("\n"));
  const c = (src: string, srcPort: number, now: number) =>
    m.connect({ src, srcPort, dst: "10.96.0.3", dstPort: 80, protocol: "tcp" }, now)!.destination.address;
  const first = c("10.201.0.100", 1000, 0);
  for (let i = 1; i < 20; i++) assert.equal(c("10.201.0.100", 1000 + i, i * 1000), first);
  const other = c("10.201.0.101", 2000, 0);
  assert.notEqual(other, first, "rr gives the next client the other server");
  const late = m.connect({
    src: "10.201.0.100",
    srcPort: 5000,
    dst: "10.96.0.3",
    dstPort: 80,
    protocol: "tcp",
  }, 200_000)!;
  assert.equal(late.reused, false, "after 60 s idle the template is gone: the scheduler decides again");
});

Deno.test("model: fwmark (DSR) services match by mark; sh/mh hash the source; kernel refusals", () => {
  const m = new IpvsModel();
  m.restore([
    "-A -f 9134 -s mh -b mh-fallback",
    "-a -f 9134 -r 10.201.0.7:8080 -i -w 1",
    "-a -f 9134 -r 10.202.0.9:8080 -i -w 1",
  ].join("\n"));
  const p = { src: "203.0.113.5", srcPort: 1, dst: "198.51.100.100", dstPort: 80, protocol: "tcp" as const };
  assert.equal(m.connect(p), undefined, "unmarked packet is not matched");
  const a = m.connect({ ...p, fwmark: 9134 })!;
  assert.equal(a.destination.forward, "tunnel");
  for (let i = 2; i < 10; i++) {
    assert.equal(m.connect({ ...p, srcPort: i, fwmark: 9134 })!.destination.address, a.destination.address);
  }
  assert.throws(() => m.restore("-A -f 9134 -s rr"), IpvsModelError);
  assert.throws(() => m.restore("-d -f 9134 -r 10.9.9.9:1"), /No such destination/);
});

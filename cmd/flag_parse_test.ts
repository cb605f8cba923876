import assert from "node:assert/strict";
import fc from "fast-check";
import { parseFlags } from "./flag_parse.ts";
import { FLAGS } from "../options/flag_table.ts";
import { optionProblems, validateOptions } from "./validate.ts";
import { ConfigError } from "../errors/mod.ts";
import { usage } from "./help.ts";

/** Argument lists as they appear in upstream's published DaemonSets and common installs. */
const DAEMONSETS: Array<{ name: string; args: string[]; expect: Record<string, unknown> }> = [
  {
    name: "generic all features, advertise routes",
    args: [
      "--run-router=true",
      "--run-firewall=true",
      "--run-service-proxy=true",
      "--kubeconfig=/var/lib/kube-router/kubeconfig",
      "--peer-router-ips=10.1.201.254",
      "--peer-router-asns=64512",
      "--cluster-asn=64512",
      "--advertise-cluster-ip=true",
    ],
    expect: {
      runRouter: true,
      kubeconfig: "/var/lib/kube-router/kubeconfig",
      peerRouterIps: ["10.1.201.254"],
      peerRouterAsns: [64512],
      clusterAsn: 64512,
      advertiseClusterIp: true,
    },
  },
  {
    name: "kubeadm all features with graceful restart and CRI runtime",
    args: [
      "--run-router=true",
      "--run-firewall=true",
      "--run-service-proxy=true",
      "--bgp-graceful-restart=true",
      "--kubeconfig=/var/lib/kube-router/kubeconfig",
      "--runtime-endpoint=unix:///run/containerd/containerd.sock",
    ],
    expect: { bgpGracefulRestart: true, runtimeEndpoint: "unix:///run/containerd/containerd.sock" },
  },
  {
    name: "proxy only DaemonSet (kube-router-proxy-daemonset)",
    args: [
      "--run-router=false",
      "--run-firewall=false",
      "--run-service-proxy=true",
      "--kubeconfig=/var/lib/kube-router/kubeconfig",
    ],
    expect: { runRouter: false, runFirewall: false, runServiceProxy: true },
  },
  {
    name: "space-separated values, repeated slices, durations and -v",
    args: [
      "--peer-router-ips",
      "192.0.2.1,192.0.2.2",
      "--peer-router-ips=192.0.2.3",
      "--peer-router-asns=65001,65002",
      "--peer-router-asns",
      "65003",
      "--iptables-sync-period=1m0s",
      "--ipvs-sync-period",
      "2h22m",
      "--routes-sync-period=30s",
      "-v",
      "3",
      "--service-cluster-ip-range=10.96.0.0/12",
      "--service-cluster-ip-range=fd00:10:96::/108",
      "--enable-ipv6", // two service CIDRs need dual-stack (upstream's firewall refuses them otherwise)
      "--excluded-cidrs=10.0.0.0/8,192.168.0.0/16",
      "--metrics-port=8080",
      "--bgp-holdtime=1m",
    ],
    expect: {
      peerRouterIps: ["192.0.2.1", "192.0.2.2", "192.0.2.3"],
      peerRouterAsns: [65001, 65002, 65003],
      iptablesSyncPeriod: 60_000,
      ipvsSyncPeriod: 2 * 3_600_000 + 22 * 60_000,
      routesSyncPeriod: 30_000,
      v: "3",
      serviceClusterIpRange: ["10.96.0.0/12", "fd00:10:96::/108"],
      excludedCidrs: ["10.0.0.0/8", "192.168.0.0/16"],
      metricsPort: 8080,
      bgpHoldtime: 60_000,
    },
  },
  {
    name: "k3s-style embedded netpol flags and shorthand forms",
    args: [
      "--run-router=false",
      "--run-service-proxy=false",
      "--netpol-default-deny",
      "-v5",
      "--hostname-override=node-a",
    ],
    expect: { netpolDefaultDeny: true, v: "5", hostnameOverride: "node-a", runFirewall: true },
  },
];

for (const ds of DAEMONSETS) {
  Deno.test(`flags: ${ds.name}`, () => {
    const { options, positionals } = parseFlags(ds.args);
    assert.deepEqual(positionals, []);
    for (const [k, v] of Object.entries(ds.expect)) {
      assert.deepEqual((options as unknown as Record<string, unknown>)[k], v, k);
    }
    validateOptions(options);
  });
}

Deno.test("flags: defaults are upstream's", () => {
  const { options: o } = parseFlags([]);
  assert.equal(o.runRouter && o.runFirewall && o.runServiceProxy, true);
  assert.equal(o.runLoadbalancer, false);
  assert.equal(o.iptablesSyncPeriod, 300_000);
  assert.equal(o.ipvsSyncPeriod, 300_000);
  assert.equal(o.routesSyncPeriod, 300_000);
  assert.equal(o.injectedRoutesSyncPeriod, 60_000);
  assert.equal(o.cacheSyncTimeout, 60_000);
  assert.equal(o.healthPort, 20244);
  assert.equal(o.bgpPort, 179);
  assert.equal(o.bgpHoldtime, 90_000);
  assert.deepEqual(o.serviceClusterIpRange, ["10.96.0.0/12"]);
  assert.equal(o.serviceNodePortRange, "30000-32767");
  assert.equal(o.overlayType, "subnet");
  assert.equal(o.overlayEncap, "ipip");
  assert.equal(o.gobgpAdminPort, 50051);
  assert.equal(o.metricsPath, "/metrics");
  assert.equal(o.v, "0");
});

Deno.test("flags: pflag details (bool takes no separate value, -- ends flags, bool shorthand groups)", () => {
  const a = parseFlags(["--run-router", "false"]);
  assert.equal(a.options.runRouter, true, "pflag reads `--bool false` as --bool plus a positional");
  assert.deepEqual(a.positionals, ["false"]);
  assert.deepEqual(parseFlags(["--", "--run-router=false"]).positionals, ["--run-router=false"]);
  const b = parseFlags(["-Vh"]);
  assert.equal(b.options.version && b.options.help, true);
  assert.equal(parseFlags(["--cluster-asn=0x10000"]).options.clusterAsn, 65536);
  assert.equal(parseFlags(["--enable-ipv6=T"]).options.enableIpv6, true);
});

Deno.test("flags: env fallback NODE_NAME for --hostname-override, the flag wins", () => {
  const env = (n: string) => (n === "NODE_NAME" ? "from-env" : undefined);
  assert.equal(parseFlags([], env).options.hostnameOverride, "from-env");
  assert.equal(parseFlags(["--hostname-override=flag"], env).options.hostnameOverride, "flag");
});

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    return e.message;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("flags: bad input names the flag and the accepted form", () => {
  assert.match(configError(() => parseFlags(["--no-such-flag=1"])), /unknown flag: --no-such-flag/);
  assert.match(
    configError(() => parseFlags(["--iptables-sync-period=5 minutes"])),
    /--iptables-sync-period.*Go duration/,
  );
  assert.match(configError(() => parseFlags(["--health-port=70000"])), /--health-port.*0 to 65535/);
  assert.match(
    configError(() => parseFlags(["--peer-router-ips=10.0.0.300"])),
    /--peer-router-ips.*IP addresses/,
  );
  assert.match(configError(() => parseFlags(["--run-router=maybe"])), /--run-router.*true or false/);
  assert.match(configError(() => parseFlags(["--overlay-type=partial"])), /--overlay-type.*subnet, full/);
  assert.match(configError(() => parseFlags(["--kubeconfig"])), /needs an argument: --kubeconfig/);
  const v = (args: string[]) => configError(() => validateOptions(parseFlags(args).options));
  assert.match(
    v(["--iptables-sync-period=-5m"]),
    /--iptables-sync-period: must be a duration greater than 0/,
  );
  assert.match(v(["--routes-sync-period=0s"]), /--routes-sync-period/);
  assert.match(v(["--service-cluster-ip-range=10.96.0.0/33"]), /--service-cluster-ip-range: expected CIDRs/);
  assert.match(v(["--cluster-asn=100"]), /--cluster-asn: a private ASN/);
  assert.match(v(["--cluster-asn=4294967295"]), /--cluster-asn/);
  assert.match(
    v(["--peer-router-ips=192.0.2.1,192.0.2.2", "--peer-router-asns=65000"]),
    /2 entries but --peer-router-asns has 1/,
  );
  assert.match(v(["--peer-router-ips=192.0.2.1", "--peer-router-asns=23456"]), /--peer-router-asns/);
  assert.match(v(["--bgp-holdtime=2s"]), /--bgp-holdtime: a duration from 3s to 18h12m16s/);
  assert.match(v(["--bgp-graceful-restart-time=4096s"]), /--bgp-graceful-restart-time/);
  assert.match(v(["--service-node-port-range=32767-30000"]), /--service-node-port-range/);
  assert.match(v(["--router-id=not-an-ip"]), /--router-id/);
  // Every problem at once, one per line.
  assert.equal(v(["--cluster-asn=1", "--bgp-holdtime=1s"]).split("\n").length, 2);
});

Deno.test("flags: --help lists every flag with its default", () => {
  const text = usage();
  for (const f of FLAGS) assert.ok(text.includes(`--${f.name}`), f.name);
  assert.match(text, /--iptables-sync-period duration\s+.*\(default 5m0s\)/);
  assert.match(text, /--health-port uint16\s+.*\(default 20244\)/);
  assert.match(text, /--service-cluster-ip-range strings\s+.*\(default \[10\.96\.0\.0\/12\]\)/);
});

Deno.test("flags: random argument lists never throw anything but ConfigError", () => {
  const names = FLAGS.map((f) => f.name);
  const arg = fc.oneof(
    fc.constantFrom(...names).map((n) => `--${n}`),
    fc.tuple(fc.constantFrom(...names), fc.string()).map(([n, v]) => `--${n}=${v}`),
    fc.string(),
  );
  fc.assert(fc.property(fc.array(arg, { maxLength: 8 }), (args) => {
    try {
      validateOptions(parseFlags(args).options);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
    }
  }));
});

Deno.test("flags: leading-zero IPv4 octets are refused, as Go's net.ParseIP does since 1.17", () => {
  assert.match(configError(() => parseFlags(["--peer-router-ips=010.0.0.1"])), /--peer-router-ips/);
  assert.match(
    configError(() => validateOptions(parseFlags(["--service-cluster-ip-range=010.96.0.0/12"]).options)),
    /--service-cluster-ip-range/,
  );
});

Deno.test("flags: collect mode reports every problem and keeps defaults for refused values", () => {
  const r = parseFlags(
    ["--nope", "--bgp-port=x", "--iptables-sync-period", "1m", "-Z", "--hostname-override"],
    () => undefined,
    { collect: true },
  );
  assert.equal(r.problems.length, 4, r.problems.join("\n"));
  assert.match(r.problems[0], /unknown flag: --nope/);
  assert.match(r.problems[1], /"--bgp-port" flag/);
  assert.match(r.problems[2], /unknown shorthand flag: 'Z'/);
  assert.match(r.problems[3], /flag needs an argument: --hostname-override/);
  assert.deepEqual([...r.refused].sort(), ["bgp-port", "hostname-override"]);
  assert.equal(r.options.bgpPort, 179);
  assert.equal(r.options.iptablesSyncPeriod, 60_000);
  assert.throws(() => parseFlags(["--nope"]), /unknown flag/);
});

Deno.test("validate: service CIDRs must match the enabled families (as upstream's firewall)", () => {
  const base = parseFlags([]).options;
  const probs = (o: Partial<typeof base>) => optionProblems({ ...base, ...o }, { readTextFile: () => "" });
  assert.deepEqual(probs({}), []);
  assert.match(probs({ serviceClusterIpRange: [] }).join(), /--service-cluster-ip-range is empty/);
  assert.match(probs({ serviceClusterIpRange: ["fd00::/108"] }).join(), /first CIDR must be IPv4/);
  assert.match(
    probs({ enableIpv4: false, enableIpv6: true }).join(),
    /IPv6 is enabled \(and IPv4 is not\), so the first CIDR must be IPv6/,
  );
  assert.match(probs({ serviceClusterIpRange: ["10.96.0.0/12", "fd00::/108"] }).join(), /need dual-stack/);
  assert.match(
    probs({ enableIpv6: true, serviceClusterIpRange: ["10.96.0.0/12", "10.0.0.0/16"] }).join(),
    /one IPv4 and one IPv6/,
  );
  assert.deepEqual(probs({ enableIpv6: true, serviceClusterIpRange: ["fd00::/108", "10.96.0.0/12"] }), []);
  for (const h of ["127.0.0.1", "::1", "localhost", "node-1.example"]) {
    assert.deepEqual(probs({ healthAddr: h }), []);
  }
  for (const h of ["1.2.3.4:80", "300.1.1.1", "a b", "http://x"]) {
    assert.match(probs({ healthAddr: h }).join(), /--health-addr/);
  }
  assert.match(
    optionProblems({ ...base, peerRouterPasswordsFile: "/x" }, {
      readTextFile: () => {
        throw new Deno.errors.NotFound("No such file or directory (os error 2): readfile '/x'");
      },
    }).join(),
    /^--peer-router-passwords-file "\/x": cannot read the file: No such file or directory \(os error 2\)$/,
  );
});

/**
 * Bad flags and CLI usage, table-driven, through the real main.ts: each case asserts the exit
 * status and the message (naming the flag or file and the accepted form), that every problem is
 * reported at once, and — since every case runs where the agent could touch the kernel, inside a
 * throwaway namespace `krbi-<random>` — that the kernel holds nothing afterwards (no rule, chain,
 * set, table or link: a refused start changes nothing). Object, manifest and annotation cases
 * live in the `edge` suites; the annotation cases here are the ones the agent's own checks own
 * (bgp-local-addresses).
 *
 * Addresses are documentation ones (192.0.2.0/24, 198.51.100.0/24) and exist only as data.
 */
import assert from "node:assert/strict";
import { CommandRunner } from "../../kernel/exec.ts";
import { REPO_ROOT as root, runAgent } from "../fixtures/agent.ts";

const EXAMPLE = `${root}manifests/examples/cluster.yaml`;
const sh = new CommandRunner();

/** Arguments that make any start that is wrongly accepted a real, bounded run on the example. */
const RUN = [`--manifests=${EXAMPLE}`, "--hostname-override=node-1", "--health-port=0"];
const PEER = ["--peer-router-ips=192.0.2.1", "--peer-router-asns=65000"];

interface Case {
  name: string;
  /** `{tmp}` is replaced by the case's scratch directory. */
  args: string[];
  code: number;
  /** Every pattern must match stderr. */
  err: RegExp[];
  /** Must not match stderr (e.g. a problem echoing another). */
  notErr?: RegExp;
  /** Must match stdout. */
  out?: RegExp;
  notOut?: RegExp;
  /** Prepares files in `{tmp}`. */
  setup?: (tmp: string) => Promise<void>;
  /** Runs the command with these extra environment variables. */
  env?: Record<string, string>;
}

const usage = (name: string, args: string[], ...err: RegExp[]): Case => ({
  name,
  args: [...args, ...RUN],
  code: 2,
  err,
});

const NODE_BOGUS_LOCAL = `apiVersion: v1
kind: Node
metadata:
  name: node-1
  annotations: { kube-router.io/bgp-local-addresses: "bogus" }
spec: { podCIDR: 10.244.1.0/24 }
status: { addresses: [{ type: InternalIP, address: 192.0.2.11 }] }
`;

const CASES: Case[] = [
  // --- flags the parser does not know, or values it cannot read
  usage("unknown flag", ["--no-such-flag"], /unknown flag: --no-such-flag/),
  usage("unknown shorthand", ["-Z"], /unknown shorthand flag: 'Z' in -Z/),
  usage("upstream's removed flag spelling", ["--run-netpol=true"], /unknown flag: --run-netpol/),
  usage("duration that is a word", ["--iptables-sync-period=fast"], /"--iptables-sync-period".*Go duration/),
  usage("duration without unit", ["--routes-sync-period=30"], /"--routes-sync-period".*Go duration/),
  usage(
    "negative period",
    ["--iptables-sync-period=-1m"],
    /--iptables-sync-period: must be a duration greater/,
  ),
  usage("zero period", ["--ipvs-sync-period=0s"], /--ipvs-sync-period: must be a duration greater than 0/),
  usage("zero cache sync timeout", ["--cache-sync-timeout=0"], /--cache-sync-timeout: must be a duration/),
  {
    name: "flag without its argument at the end",
    args: [...RUN, "--routes-sync-period"],
    code: 2,
    err: [/flag needs an argument: --routes-sync-period/],
  },
  usage("bool that is not a bool", ["--run-router=maybe"], /"--run-router" flag: expected true or false/),
  usage("pflag bool with a separate value", ["--run-router", "false"], /unexpected argument "false"/),
  usage("stray positional", ["extra"], /unexpected argument "extra".*subcommands are run, proxy/),
  usage(
    "uint16 out of range",
    ["--health-port=65536"],
    /"--health-port" flag: expected an unsigned integer from 0 to 65535/,
  ),
  usage("negative uint", ["--metrics-port=-1"], /"--metrics-port" flag: expected an unsigned integer/),
  usage("uint that is a word", ["--bgp-port=abc"], /"--bgp-port" flag: expected an unsigned integer/),
  usage("choice not offered", ["--service-proxy-mode=iptables"], /accepted values are ipvs, nftables/),
  usage(
    "log format not offered",
    ["--log-format=xml"],
    /"--log-format" flag: accepted values are text, json/,
  ),
  usage("verbosity word", ["-v", "x"], /invalid value "x" for --v/),
  usage("both families off", ["--enable-ipv4=false", "--enable-ipv6=false"], /enable at least one family/),
  usage(
    "every controller off",
    ["--run-router=false", "--run-firewall=false", "--run-service-proxy=false"],
    /no controller is enabled/,
  ),
  // --- service and address ranges (upstream's firewall refuses these at start-up)
  usage("empty service CIDR", ["--service-cluster-ip-range="], /--service-cluster-ip-range is empty/),
  usage(
    "service CIDR prefix too long",
    ["--service-cluster-ip-range=10.96.0.0/40"],
    /--service-cluster-ip-range: expected CIDRs/,
  ),
  usage(
    "service CIDR without length",
    ["--service-cluster-ip-range=10.96.0.0"],
    /--service-cluster-ip-range: expected CIDRs/,
  ),
  usage(
    "IPv6 service CIDR on an IPv4 agent",
    ["--service-cluster-ip-range=fd00::/108"],
    /IPv4 is enabled \(and IPv6 is not\), so the first CIDR must be IPv4/,
  ),
  usage(
    "IPv4 service CIDR on an IPv6 agent",
    ["--enable-ipv4=false", "--enable-ipv6"],
    /IPv6 is enabled \(and IPv4 is not\), so the first CIDR must be IPv6/,
  ),
  usage(
    "two service CIDRs without dual-stack",
    ["--service-cluster-ip-range=10.96.0.0/12,fd00::/108"],
    /two CIDRs need dual-stack/,
  ),
  usage(
    "dual-stack with two IPv4 service CIDRs",
    ["--enable-ipv6", "--service-cluster-ip-range=10.96.0.0/12,10.0.0.0/16"],
    /one IPv4 and one IPv6 CIDR/,
  ),
  usage(
    "three service CIDRs",
    ["--enable-ipv6", "--service-cluster-ip-range=10.96.0.0/12,fd00::/108,10.0.0.0/16"],
    /at most two CIDRs, one per IP family/,
  ),
  usage(
    "node port range reversed",
    ["--service-node-port-range=32767-30000"],
    /--service-node-port-range: expected FIRST-LAST/,
  ),
  usage("node port range from 0", ["--service-node-port-range=0-100"], /--service-node-port-range/),
  usage("node port range word", ["--service-node-port-range=all"], /--service-node-port-range/),
  usage(
    "external IP range word",
    ["--service-external-ip-range=bogus"],
    /--service-external-ip-range: expected CIDRs/,
  ),
  usage("LB range prefix too long", ["--loadbalancer-ip-range=192.0.2.0/33"], /--loadbalancer-ip-range/),
  usage("excluded CIDR with a leading zero", ["--excluded-cidrs=010.0.0.0/8"], /--excluded-cidrs/),
  // --- listeners
  usage(
    "health address with a port",
    ["--health-addr=127.0.0.1:8080"],
    /--health-addr: an IP address or host name/,
  ),
  usage(
    "health address not an IP",
    ["--health-addr=300.1.1.1"],
    /invalid value "300.1.1.1" for --health-addr/,
  ),
  usage("metrics address with a blank", ["--metrics-addr=a b"], /--metrics-addr/),
  // --- BGP
  usage("cluster ASN public", ["--cluster-asn=1"], /--cluster-asn: a private ASN/),
  usage("cluster ASN 65535", ["--cluster-asn=65535"], /invalid value 65535 for --cluster-asn/),
  usage(
    "peer IP without ASN",
    ["--peer-router-ips=192.0.2.1"],
    /--peer-router-ips has 1 entries but --peer-router-asns has 0/,
  ),
  usage(
    "peer IP word",
    ["--peer-router-ips=bogus", "--peer-router-asns=65000"],
    /"--peer-router-ips" flag: expected IP addresses/,
  ),
  usage(
    "peer IP leading zero",
    ["--peer-router-ips=192.0.2.01", "--peer-router-asns=65000"],
    /"192\.0\.2\.01".*--peer-router-ips/,
  ),
  usage(
    "peer ASN AS_TRANS",
    ["--peer-router-ips=192.0.2.1", "--peer-router-asns=23456"],
    /--peer-router-asns: ASNs from 1/,
  ),
  usage(
    "peer ASN 0",
    ["--peer-router-ips=192.0.2.1", "--peer-router-asns=0"],
    /invalid value 0 for --peer-router-asns/,
  ),
  usage("peer ASN word", ["--peer-router-asns=x"], /"--peer-router-asns" flag: expected an unsigned integer/),
  usage("peer port 0", [...PEER, "--peer-router-ports=0"], /--peer-router-ports: ports 1-65535/),
  usage(
    "more ports than peers",
    [...PEER, "--peer-router-ports=179,180"],
    /--peer-router-ports has 2 entries/,
  ),
  usage("password not base64", [...PEER, "--peer-router-passwords=not*b64"], /must be base64-encoded/),
  usage(
    "more passwords than peers",
    [...PEER, "--peer-router-passwords=YQ==,Yg=="],
    /--peer-router-passwords has 2/,
  ),
  usage(
    "passwords file missing",
    [...PEER, "--peer-router-passwords-file={tmp}/nope"],
    /--peer-router-passwords-file ".*\/nope": cannot read the file: No such file/,
  ),
  usage(
    "passwords file is a directory",
    [...PEER, "--peer-router-passwords-file={tmp}"],
    /--peer-router-passwords-file ".*": cannot read the file: not a regular file/,
  ),
  {
    ...usage(
      "passwords file is a FIFO (must not block)",
      [...PEER, "--peer-router-passwords-file={tmp}/fifo"],
      /--peer-router-passwords-file ".*fifo": cannot read the file: not a regular file/,
    ),
    setup: (tmp) => sh.run(["mkfifo", `${tmp}/fifo`]).then(() => {}),
  },
  {
    ...usage(
      "passwords file not base64",
      [...PEER, "--peer-router-passwords-file={tmp}/pw"],
      /--peer-router-passwords-file ".*pw": entries must be base64-encoded/,
    ),
    setup: (tmp) => Deno.writeTextFile(`${tmp}/pw`, "secret!\n"),
  },
  {
    ...usage(
      "passwords file with more entries than peers",
      [...PEER, "--peer-router-passwords-file={tmp}/pw"],
      /has 2 entries but --peer-router-ips has 1/,
    ),
    setup: (tmp) => Deno.writeTextFile(`${tmp}/pw`, "YQ==,Yg==\n"),
  },
  usage("hold time below 3 s", ["--bgp-holdtime=1s"], /--bgp-holdtime: a duration from 3s/),
  usage("hold time above the maximum", ["--bgp-holdtime=19h"], /--bgp-holdtime/),
  usage(
    "graceful restart time 0",
    ["--bgp-graceful-restart-time=0s"],
    /--bgp-graceful-restart-time: a duration from 1s to 4095s/,
  ),
  usage(
    "graceful restart time too long",
    ["--bgp-graceful-restart-time=5000s"],
    /--bgp-graceful-restart-time/,
  ),
  usage(
    "deferral time too long",
    ["--bgp-graceful-restart-deferral-time=19h"],
    /--bgp-graceful-restart-deferral-time/,
  ),
  usage("router id word", ["--router-id=bogus"], /--router-id: an IPv4 address or "generate"/),
  usage("router id IPv6", ["--router-id=2001:db8::1"], /invalid value "2001:db8::1" for --router-id/),
  usage("BGP port 0", ["--bgp-port=0"], /--bgp-port: a port from 1 to 65535/),
  usage("BGP port above 65535", ["--bgp-port=70000"], /invalid value 70000 for --bgp-port/),
  usage("BFD multiplier 0", ["--bfd-detection-multiplier=0"], /--bfd-detection-multiplier: 1-255/),
  usage("BFD port 0", ["--bfd-port=0"], /--bfd-port: a port from 1 to 65535/),
  // --- all problems at once: a parse error hides nothing
  {
    name: "three problems, three lines",
    args: ["--bgp-port=x", "--cluster-asn=1", "--nope", ...RUN],
    code: 2,
    err: [/"--bgp-port" flag/, /--cluster-asn: a private ASN/, /unknown flag: --nope/],
  },
  {
    name: "a parse error does not hide a validation error",
    args: ["--iptables-sync-period=fast", "--service-cluster-ip-range=", "--health-addr=1.2.3.4:80", ...RUN],
    code: 2,
    err: [/"--iptables-sync-period" flag/, /--service-cluster-ip-range is empty/, /--health-addr/],
  },
  {
    name: "a refused value is not echoed by a cross-field check",
    args: ["--peer-router-ips=bogus", "--peer-router-asns=65000", ...RUN],
    code: 2,
    err: [/"--peer-router-ips" flag/],
    notErr: /has 0 entries/,
  },
  // --- subcommands
  {
    name: "cleanup with every --run-* false",
    args: ["cleanup", "--run-router=false", "--run-firewall=false", "--run-service-proxy=false"],
    code: 2,
    err: [/nothing to clean up/],
  },
  {
    name: "annotate on a kind it does not handle",
    args: ["annotate", "pod", "x"],
    code: 2,
    err: [/annotate: expected "node NAME"/],
  },
  {
    name: "unknown word where a subcommand goes",
    args: ["frobnicate"],
    code: 2,
    err: [/unexpected argument "frobnicate"/],
  },
  {
    name: "annotate --validate: bgp-local-addresses that is not an IP",
    args: ["annotate", "--validate", "-f", "{tmp}/node.yaml"],
    code: 2,
    err: [/node\/node-1: annotation kube-router\.io\/bgp-local-addresses: "bogus" is not an IP address/],
    setup: (tmp) => Deno.writeTextFile(`${tmp}/node.yaml`, NODE_BOGUS_LOCAL),
  },
  {
    name: "router with bgp-local-addresses=bogus: never listens on bogus, says why",
    args: ["router", "--dry-run", "--manifests={tmp}/node.yaml", "--hostname-override=node-1"],
    code: 0,
    err: [/bgp-local-addresses: "bogus" is not an IP address; listening on 192\.0\.2\.11 instead/],
    out: /192\.0\.2\.11/,
    notOut: /bogus/,
    setup: (tmp) => Deno.writeTextFile(`${tmp}/node.yaml`, NODE_BOGUS_LOCAL),
  },
  // --- start-up failures after parsing: exit 1 or 2, nothing programmed
  {
    name: "own Node missing",
    args: ["firewall", `--manifests=${EXAMPLE}`, "--hostname-override=node-9", "--health-port=0"],
    code: 1,
    err: [/node "node-9" not found in the cluster after the initial sync/],
  },
  {
    name: "manifests path missing",
    args: ["firewall", "--manifests={tmp}/none.yaml", "--hostname-override=node-1", "--health-port=0"],
    code: 2,
    err: [/--manifests ".*none\.yaml": No such file or directory/],
  },
  {
    name: "kubeconfig missing",
    args: ["firewall", "--kubeconfig={tmp}/none", "--hostname-override=node-1", "--health-port=0"],
    code: 2,
    err: [/--kubeconfig ".*none".*No such file|cannot load Kubernetes client configuration: .*none/],
  },
  {
    name: "NODE_NAME from the environment names a missing node",
    args: ["firewall", `--manifests=${EXAMPLE}`, "--health-port=0"],
    env: { NODE_NAME: "node-from-env" },
    code: 1,
    err: [/node "node-from-env" not found/],
  },
];

/** What an agent could leave behind (built-in empty tables are created by any listing). */
async function kernelState(ns: string): Promise<string> {
  const builtin = /^:(INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) ACCEPT/;
  const ipt = (await sh.run(["iptables-save"], { netns: ns })).stdout.split("\n")
    .filter((l) => (l.startsWith("-") || l.startsWith(":")) && !builtin.test(l));
  const sets = (await sh.run(["ipset", "list", "-n"], { netns: ns })).stdout.trim();
  const tables = (await sh.run(["nft", "list", "tables"], { netns: ns })).stdout.split("\n")
    .filter((l) => l && !/^table (ip|ip6|inet) (filter|nat|mangle|raw|security)$/.test(l));
  const links = (await sh.run(["ip", "-o", "link", "show"], { netns: ns })).stdout.split("\n")
    .map((l) => l.split(":")[1]).filter(Boolean);
  return JSON.stringify({ ipt, sets, tables, links });
}

async function runCase(c: Case, ns: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const tmp = await Deno.makeTempDir({ prefix: "krbi-" });
  try {
    await c.setup?.(tmp);
    const args = c.args.map((a) => a.replaceAll("{tmp}", tmp));
    return await runAgent(args, {
      netns: ns,
      cwd: root,
      env: { NODE_NAME: "", KUBE_ROUTER_CNI_CONF_FILE: `${tmp}/cni.conf`, ...c.env },
      // A case wrongly accepted runs the agent: bound it, and fail.
      signal: AbortSignal.timeout(30_000),
    });
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name:
    `cli bad input: ${CASES.length} cases, each with its exit status, its message, and an untouched kernel`,
  sanitizeResources: false,
  async fn(t) {
    assert.ok(CASES.length >= 60, `only ${CASES.length} cases`);
    assert.equal(new Set(CASES.map((c) => c.name)).size, CASES.length, "case names are unique");
    const ns = `krbi-${crypto.randomUUID().slice(0, 8)}`;
    await sh.run(["ip", "netns", "add", ns]);
    try {
      await sh.run(["ip", "-n", ns, "link", "set", "lo", "up"]);
      const pristine = await kernelState(ns);
      // Two at a time (2 cores shared with other suites); each case is one agent start.
      const results = new Map<Case, Awaited<ReturnType<typeof runCase>>>();
      const kernelAfter = new Map<Case, string>();
      for (let i = 0; i < CASES.length; i += 2) {
        const batch = CASES.slice(i, i + 2);
        const rs = await Promise.all(batch.map((c) => runCase(c, ns)));
        const state = await kernelState(ns);
        batch.forEach((c, j) => {
          results.set(c, rs[j]);
          kernelAfter.set(c, state);
        });
      }
      for (const c of CASES) {
        await t.step(c.name, () => {
          const r = results.get(c)!;
          const ctx = `${c.args.join(" ")}\n--- stderr:\n${r.stderr}`;
          assert.equal(r.code, c.code, ctx);
          for (const re of c.err) assert.match(r.stderr, re, ctx);
          if (c.notErr) assert.doesNotMatch(r.stderr, c.notErr, ctx);
          if (c.out) assert.match(r.stdout, c.out, r.stdout);
          if (c.notOut) assert.doesNotMatch(r.stdout, c.notOut, r.stdout);
          assert.doesNotMatch(r.stderr, /^\s+at .*\.ts:\d+/m, "no stack trace");
          assert.equal(kernelAfter.get(c), pristine, "the kernel changed");
        });
      }
    } finally {
      await sh.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
    }
  },
});

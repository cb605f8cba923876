/**
 * The operator-facing details of the CLI: `bgp --help`, what `--dry-run` shows (LoadBalancer
 * allocator, CNI file, tunnels), `cleanup --dry-run` wording, readable `-v 1` lines with
 * `file:line` and microseconds. Addresses: the example cluster's (192.0.2.0/24, 198.51.100.0/24,
 * 10.244.0.0/16, 203.0.113.0/24) exist only as manifest data; runs that read the kernel run in a
 * fresh network namespace `kropsurf-<random>` that the test removes.
 */
import assert from "node:assert/strict";
import { CommandRunner } from "../../kernel/exec.ts";
import { REPO_ROOT as root, runAgent } from "../fixtures/agent.ts";

const EXAMPLE = `${root}manifests/examples/cluster.yaml`;
const sh = new CommandRunner();

/** `kube-router ARGS` to completion, from the repository root. */
function kr(args: string[], opts: { netns?: string; env?: Record<string, string> } = {}) {
  return runAgent(args, { ...opts, cwd: root });
}

async function withNetns<T>(fn: (ns: string) => Promise<T>): Promise<T> {
  const ns = `kropsurf-${crypto.randomUUID().slice(0, 8)}`;
  await sh.run(["ip", "netns", "add", ns]);
  try {
    await sh.run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    return await fn(ns);
  } finally {
    await sh.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
  }
}

const DRY = ["run", "--dry-run", "--manifests", EXAMPLE, "--hostname-override", "node-1"];

Deno.test("cli: bgp --help prints the usage and exits 0", async () => {
  for (const flag of ["--help", "-h"]) {
    const r = await kr(["bgp", flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^usage: kube-router bgp peers\|routes/);
  }
  assert.equal((await kr(["bgp", "--bogus"])).code, 2);
});

Deno.test("cli: --dry-run shows the LoadBalancer allocator, the CNI file and the tunnels", async () => {
  const cni = await Deno.makeTempDir({ prefix: "kropsurf-cni-" });
  try {
    const r = await kr([
      ...DRY,
      "--run-firewall=false",
      "--run-service-proxy=false",
      "--run-loadbalancer",
      "--loadbalancer-ip-range=203.0.113.0/28",
      "--enable-overlay",
      "--overlay-type=full",
    ], { env: { KUBE_ROUTER_CNI_CONF_FILE: `${cni}/10-kuberouter.conf` } });
    assert.equal(r.code, 0, r.stderr);
    // Allocator: the example's LoadBalancer service keeps its address.
    assert.match(r.stdout, /^### loadbalancer: transactions for node node-1/m);
    assert.match(r.stdout, /^# loadbalancer: service shop\/frontend keeps 203\.0\.113\.10$/m);
    // CNI file: shown, not written.
    assert.match(r.stdout, new RegExp(`^# CNI config ${cni}/10-kuberouter.conf would be created:$`, "m"));
    assert.match(r.stdout, /"subnet": "10\.244\.1\.0\/24"/);
    await assert.rejects(Deno.stat(`${cni}/10-kuberouter.conf`), Deno.errors.NotFound);
    // Full overlay: one tunnel per remote node, routes through them.
    const tunnels = r.stdout.match(/^# tunnel tun-[0-9a-f]{11} ipip local 192\.0\.2\.11 remote \S+$/gm) ?? [];
    assert.deepEqual(tunnels.map((t) => t.split(" remote ")[1]).sort(), ["192.0.2.12", "198.51.100.13"]);
    assert.match(r.stdout, /^# route 10\.244\.3\.0\/24 via 198\.51\.100\.13 dev tun-[0-9a-f]{11} onlink/m);
  } finally {
    await Deno.remove(cni, { recursive: true });
  }
});

Deno.test("cli: cleanup --dry-run says what it would remove, and removes nothing", async () => {
  await withNetns(async (ns) => {
    const r = await kr(["cleanup", "--dry-run"], { netns: ns });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /firewall: would remove everything it had programmed \(dry run\)/);
    assert.match(r.stderr, /firewall cleanup would remove \d+ chains/);
    assert.doesNotMatch(r.stderr, /\bremoved\b/);
  });
});

Deno.test("cli: -v 1 lines are sentences with file:line and real microseconds", async () => {
  const r = await kr([...DRY, "-v", "1"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.trim().split("\n");
  for (const l of lines) {
    assert.match(l, /^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d{6} \d+ [\w.-]+\.ts:\d+\] /, l);
    assert.doesNotMatch(l, /\{"|\d\.\d{6,}s/, `raw value in: ${l}`);
  }
  assert.ok(lines.some((l) => !/\.\d{3}000 /.test(l)), "every line has microseconds 000");
  assert.ok(
    lines.some((l) => / firewall: applied \d+ kernel transactions in \d+ ms: wrote \d+ chains/.test(l)),
  );
  const nft = await kr([...DRY, "-v", "1", "--service-proxy-mode=nftables", "--run-firewall=false"]);
  assert.match(nft.stderr, / proxy: applied a full nftables transaction of \d+ lines$/m);
});

Deno.test("cli: trace on --manifests: text and --json, exit 0 allowed, 1 denied, 2 bad usage", async () => {
  const ok = await kr(["trace", "shop/cart-1", "db/postgres-0", "--port", "5432", "--manifests", EXAMPLE]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /ingress policies: db\/default-deny-ingress, db\/postgres-from-shop-cart/);
  assert.match(
    ok.stdout,
    /accept: rule to ACCEPT ingress traffic of network policy db\/postgres-from-shop-cart rule 0/,
  );
  assert.match(ok.stdout, /^verdict: ALLOWED$/m);
  const denied = await kr([
    "trace",
    "shop/frontend-1",
    "db/postgres-0",
    "--port=5432",
    `--manifests=${EXAMPLE}`,
  ]);
  assert.equal(denied.code, 1, denied.stderr);
  assert.match(denied.stdout, /^verdict: REJECTED$/m);
  const json = await kr([
    "trace",
    "monitoring/prometheus-0",
    "svc/shop/frontend",
    "--json",
    "--manifests",
    EXAMPLE,
  ]);
  assert.equal(json.code, 0, json.stderr);
  const r = JSON.parse(json.stdout);
  assert.equal(r.service.name, "shop/frontend");
  assert.deepEqual(r.reachable, ["shop/frontend-1", "shop/frontend-2"]);
  assert.equal(r.paths[0].target.port, 8080);
  const help = await kr(["trace", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: kube-router trace FROM TO/);
  const bad = await kr(["trace", "shop/nope", "db/postgres-0", "--manifests", EXAMPLE]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /source "shop\/nope": no pod shop\/nope/);
});

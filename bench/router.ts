/**
 * Routing controller at scale: a simulated 1,000-node cluster whose 1,000 pod CIDRs reach this
 * node through ONE route reflector (BIRD, fed a generated static config), then one node's pod
 * CIDR changes.
 *
 * Figures:
 * - peer up → all 1,000 routes in the kernel (our controller: best-path events → one coalesced
 *   `ip -batch`), against the reference of installing the same routes with one `ip route
 *   replace` process per route, measured in the same run;
 * - one node's pod CIDR change (BIRD `configure`) → kernel updated, against the reference of a
 *   full rewrite (one `ip -batch` replacing all 1,000 routes).
 *
 * Runs itself inside a throwaway namespace `rt-bench-<id>-node` (the speaker's sockets must be
 * there); BIRD runs in `rt-bench-<id>-rr`. Addresses: node network 10.213.0.0/16 (this node
 * 10.213.0.1, BIRD 10.213.0.2, simulated nodes 10.213.1.1…), pod CIDRs 10.214.0.0/24 upward.
 *
 * Usage: deno run -A bench/router.ts [--nodes 1000]
 *
 * @module
 */
import { BgpSpeaker } from "../bgp/mod.ts";
import { defaultOptions } from "../options/mod.ts";
import type { ControllerContext } from "../controllers/controller.ts";
import { RouterController } from "../controllers/router/mod.ts";
import { CommandRunner } from "../kernel/exec.ts";
import { logger } from "../observe/log.ts";
import { MetricsRegistry } from "../observe/metrics.ts";
import { emptySnapshot } from "../watch/types.ts";

const N = Number(Deno.args[Deno.args.indexOf("--nodes") + 1]) || 1000;

function podCidr(i: number): string {
  return `10.${214 + Math.floor(i / 256)}.${i % 256}.0/24`;
}
function nodeIp(i: number): string {
  return `10.213.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

function birdRoutes(changed: number | null): string {
  const lines: string[] = [];
  for (let i = 0; i < N; i++) {
    const cidr = i === changed ? `10.250.${i % 256}.0/24` : podCidr(i);
    lines.push(`route ${cidr} via ${nodeIp(i)};`);
  }
  return `protocol static nodes {\n  ipv4;\n${lines.join("\n")}\n}\n`;
}

async function sh(argv: string[], stdin?: string): Promise<string> {
  const c = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  if (stdin) {
    const w = c.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const o = await c.output();
  if (o.code !== 0) throw new Error(`${argv.join(" ")}: ${new TextDecoder().decode(o.stderr)}`);
  return new TextDecoder().decode(o.stdout);
}

function deadline(what: string, ms = 60_000): () => void {
  const end = performance.now() + ms;
  return () => {
    if (performance.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
  };
}

async function countOurRoutes(): Promise<number> {
  const out = await sh(["ip", "-4", "route", "show", "proto", "17"]);
  return out === "" ? 0 : out.trimEnd().split("\n").length;
}

async function inner(dir: string): Promise<void> {
  const ctl = `${dir}/bird.ctl`;
  const options = {
    ...defaultOptions(),
    enableIbgp: false,
    enableOverlay: false,
    enableCni: false,
    enablePodEgress: false,
    peerRouterIps: ["10.213.0.2"],
    peerRouterAsns: [64512],
    gobgpAdminPort: 0,
    injectedRoutesSyncPeriod: 0,
  };
  const ctx: ControllerContext = {
    options,
    runner: new CommandRunner(),
    nodeName: "bench-node",
    log: logger("bench"),
    metrics: new MetricsRegistry(),
    dryRun: false,
  };
  const c = new RouterController(ctx, {
    cniConfPath: `${dir}/cni.conf`,
    settleMs: 0,
    speakerFactory: (cfg) => new BgpSpeaker({ ...cfg, listen: false }),
  });
  const abort = new AbortController();
  await c.start(abort.signal);
  const snap = {
    ...emptySnapshot(),
    nodes: new Map([["bench-node", {
      name: "bench-node",
      labels: {},
      annotations: {},
      podCIDRs: ["10.218.255.0/24"],
      internalIPs: ["10.213.0.1"],
      externalIPs: [],
      providerID: "",
    }]]),
  };
  await c.sync(snap, abort.signal);
  // Peer up.
  let tUp = 0;
  const d1 = deadline("the BGP session to the route reflector");
  while (true) {
    d1();
    const p = c.speaker?.peers()[0];
    if (p?.state === "Established") {
      // The session came up uptimeMs ago (the event loop may have been busy with the UPDATEs).
      tUp = performance.now() - p.uptimeMs;
      break;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  let tAll = 0;
  const d2 = deadline(`${N} routes in the kernel`);
  while (true) {
    try {
      d2();
    } catch (e) {
      console.error(
        JSON.stringify(c.speaker?.peers()),
        c.lastRouteError?.message,
        c.stats,
        await countOurRoutes(),
      );
      console.error(JSON.stringify(c.speaker?.locRib().slice(0, 3)));
      throw e;
    }
    if ((await countOurRoutes()) >= N) {
      tAll = performance.now();
      break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const converge = tAll - tUp;
  const appliesForLoad = c.stats.routeApplies;

  // One node's pod CIDR changes: node 500 moves from podCidr(500) to 10.250.x.0/24.
  const k = Math.min(500, N - 1);
  await Deno.writeTextFile(`${dir}/routes.conf`, birdRoutes(k));
  const newCidr = `10.250.${k % 256}.0/24`;
  const t0 = performance.now();
  await sh(["ip", "netns", "exec", Deno.env.get("KR_BENCH_RR")!, "birdc", "-s", ctl, "configure"]);
  const tConfigured = performance.now();
  let tChanged = 0;
  const d3 = deadline("the changed pod CIDR in the kernel");
  while (true) {
    d3();
    const out = await sh(["ip", "-4", "route", "show", "proto", "17", newCidr]);
    if (out.includes(newCidr)) {
      const old = await sh(["ip", "-4", "route", "show", "proto", "17", podCidr(k)]);
      if (old.trim() === "") {
        tChanged = performance.now();
        break;
      }
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  abort.abort();
  await c.stop();

  // References, measured in this namespace now.
  const routes = await sh(["ip", "-4", "-j", "route", "show", "proto", "17"]);
  const rs = JSON.parse(routes) as Array<{ dst: string; gateway: string }>;
  await sh(["ip", "-batch", "-"], rs.map((r) => `route del ${r.dst} proto 17`).join("\n") + "\n");
  const sample = rs.slice(0, Math.min(200, rs.length));
  const tp0 = performance.now();
  for (const r of sample) await sh(["ip", "route", "replace", r.dst, "via", r.gateway, "proto", "17"]);
  const perProcess = (performance.now() - tp0) / sample.length * rs.length;
  const tb0 = performance.now();
  await sh(
    ["ip", "-batch", "-"],
    rs.map((r) => `route replace ${r.dst} via ${r.gateway} proto 17`).join("\n") + "\n",
  );
  const fullRewrite = performance.now() - tb0;

  console.log(JSON.stringify({
    nodes: N,
    peerUpToAllRoutesMs: Math.round(converge),
    routeAppliesDuringLoad: appliesForLoad,
    referencePerRouteProcessMs: Math.round(perProcess),
    podCidrChangeMs: Math.round(tChanged - t0),
    podCidrChangeAfterBirdConfigureMs: Math.round(tChanged - tConfigured),
    referenceFullRewriteMs: Math.round(fullRewrite),
  }));
}

async function outer(): Promise<void> {
  const id = crypto.randomUUID().slice(0, 6);
  const nodeNs = `rt-bench-${id}-node`, rrNs = `rt-bench-${id}-rr`;
  const dir = await Deno.makeTempDir({ prefix: "kr-rt-bench-" });
  let bird: Deno.ChildProcess | undefined;
  try {
    await sh(["ip", "netns", "add", nodeNs]);
    await sh(["ip", "netns", "add", rrNs]);
    await sh([
      "ip",
      "link",
      "add",
      "rtb-n",
      "netns",
      nodeNs,
      "type",
      "veth",
      "peer",
      "name",
      "rtb-r",
      "netns",
      rrNs,
    ]);
    await sh(
      ["ip", "-n", nodeNs, "-batch", "-"],
      "link set lo up\nlink set rtb-n up\naddr add 10.213.0.1/16 dev rtb-n\n",
    );
    await sh(
      ["ip", "-n", rrNs, "-batch", "-"],
      "link set lo up\nlink set rtb-r up\naddr add 10.213.0.2/16 dev rtb-r\n",
    );
    await Deno.writeTextFile(`${dir}/routes.conf`, birdRoutes(null));
    await Deno.writeTextFile(
      `${dir}/bird.conf`,
      `router id 10.213.0.2;
protocol device { scan time 10; }
include "${dir}/routes.conf";
protocol bgp node { local 10.213.0.2 as 64512; neighbor 10.213.0.1 as 64512; rr client;
  ipv4 { import none; export all; next hop keep; }; }
`,
    );
    bird = new Deno.Command("ip", {
      args: ["netns", "exec", rrNs, "bird", "-f", "-c", `${dir}/bird.conf`, "-s", `${dir}/bird.ctl`],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        nodeNs,
        "env",
        `KR_BENCH_INNER=${dir}`,
        `KR_BENCH_RR=${rrNs}`,
        Deno.execPath(),
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        "--nodes",
        String(N),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const res = await child.output();
    const out = new TextDecoder().decode(res.stdout);
    if (res.code !== 0) throw new Error(`bench: inner run failed (exit ${res.code})`);
    const r = JSON.parse(out.trim().split("\n").pop()!);
    const ratio = (a: number, b: number) => (b === 0 ? "n/a" : `${(a / b).toFixed(1)}x`);
    console.log(`router bench, ${r.nodes} pod CIDRs via one route reflector (BIRD)`);
    console.log(
      `  peer up → all routes in kernel:  ${r.peerUpToAllRoutesMs} ms  (${r.routeAppliesDuringLoad} ip -batch runs; ` +
        `reference one 'ip route replace' per route: ${r.referencePerRouteProcessMs} ms = ${
          ratio(r.referencePerRouteProcessMs, r.peerUpToAllRoutesMs)
        } slower)   target < 2000 ms`,
    );
    console.log(
      `  one pod CIDR change → kernel:    ${r.podCidrChangeMs} ms incl. birdc configure, ${r.podCidrChangeAfterBirdConfigureMs} ms after it ` +
        `(reference full rewrite of ${r.nodes} routes: ${r.referenceFullRewriteMs} ms)   target < 100 ms`,
    );
  } finally {
    try {
      bird?.kill("SIGTERM");
      await bird?.status;
    } catch { /* gone */ }
    await sh(["ip", "netns", "del", nodeNs]).catch(() => {});
    await sh(["ip", "netns", "del", rrNs]).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const innerDir = Deno.env.get("KR_BENCH_INNER");
  if (innerDir) await inner(innerDir);
  else await outer();
}

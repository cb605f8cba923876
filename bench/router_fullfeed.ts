/**
 * Full Internet table through the routing controller into the kernel (not a test).
 *
 * BIRD (AS 65000) feeds N IPv4 /32s (K static protocols, realistic AS paths and communities as
 * in bench/bgp_fullfeed.ts) over eBGP to, one at a time in the same run:
 * - gobgpd (reference, RIB only: no kernel installation), counted with `gobgp global rib summary`;
 * - our routing controller (RouterController in a child Deno process inside its namespace, the
 *   real event → delta → rtnetlink path), counted in the kernel: the child reports the routes the
 *   kernel acknowledged within 5 ms of a change, and every phase ends with a netlink dump of the namespace's
 *   main table (`bench/netlink_route_rate.c count`) that must show exactly the expected number of
 *   proto 17 routes.
 *
 * Phases: load (session Established → all N in the kernel / in gobgpd's RIB; BIRD's `show
 * protocols` Since column is the start), RSS with the table held, withdrawal of the whole table
 * (all static protocols disabled → 0 left), re-load, sustained churn with the table held (groups of
 * static protocols flipped off and on, waiting for each; rate = prefixes withdrawn + re-announced
 * per second until the kernel is back at N), for ours also pipelined churn (`pipelinedChurn`:
 * BIRD's reaction time overlapped, rate = kernel route changes per second) and the same fed by our
 * raw feeder (`rawChurn`: 200k more prefixes churned from pre-encoded UPDATEs, so neither birdc
 * nor BIRD paces it; `--raw-prefixes 0` leaves it out), then M IPv6 /128s
 * over an IPv6 session (load and withdrawal), taken by a fresh receiver process so that its RSS is
 * the IPv6 table's, not the IPv4 phases' high-water mark. RSS is read 2 s after a table is complete.
 * Reference for the kernel path: the kernel's own rate for the same number of route messages
 * (bench/netlink_route_rate.c: 512 per sendmsg, one acknowledgement per sendmsg) measured in a
 * spare namespace in the same run.
 *
 *   deno run -A bench/router_fullfeed.ts [--prefixes 1000000] [--prefixes6 500000] [--protocols 500]
 *     [--churn-seconds 10] [--churn-batch 50000] [--churn-depth 3] [--raw-prefixes 200000]
 *     [--only ours,gobgpd]
 *     [--v8 --max-semi-space-size=16]
 *
 * Our child runs with 16 MB semi-spaces (`--v8`), the setting for a node that takes a full table
 * (controllers/router/README.md): at 1M prefixes the shipped 1 MB semi-spaces promote the
 * churn's short-lived objects into the old generation; measured here, 1 MB gave 588 MB RSS and
 * 61k changes/s pipelined churn, 2 MB 539–589 MB and 70–80k/s, 16 MB 412–548 MB and 88–103k/s.
 *
 * CHILD_FLAGS="--cpu-prof --cpu-prof-dir=DIR" adds Deno flags to our child (stopped with SIGTERM
 * then, so a profile is written).
 *
 * Addresses: lab nodes 10.240.0.x / 2001:db8:240::x (tests/fixtures/bgp_peers.ts); the table is
 * 10.200.0.0 upwards and 2001:db8:f000:: upwards, routes only inside the lab's namespaces.
 *
 * @module
 */
import { BgpLab, type Bird, type Gobgp, rssKb, waitFor } from "../tests/fixtures/bgp_peers.ts";
import { type RouterChildConfig, spawnRouterChild } from "../tests/fixtures/router_child.ts";
import { procStatus } from "./proc_status.ts";
import { lines } from "../tests/fixtures/lines.ts";

function arg(name: string, dflt: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
}
const N = arg("prefixes", 1_000_000);
const N6 = arg("prefixes6", 500_000);
const K = arg("protocols", 500);
const CHURN_S = arg("churn-seconds", 10);
const ONLY = (() => {
  const i = Deno.args.indexOf("--only");
  return i >= 0 ? Deno.args[i + 1].split(",") : ["ours", "gobgpd"];
})();
const V8_FLAGS = (() => {
  const i = Deno.args.indexOf("--v8");
  const v = i >= 0 ? Deno.args[i + 1] : "--max-semi-space-size=16";
  return v ? v.split(",") : [];
})();
const OUR_ASN = 64512;
/**
 * Churn groups: static protocol k is named `s<k % G>_<k>`, so one `birdc disable "s3_*"` flips a
 * whole group (~CHURN_BATCH prefixes) at once, with no per-protocol birdc round trips.
 */
const CHURN_BATCH = arg("churn-batch", 50_000);
/** Pipelined churn: groups withdrawn at once (steps in flight); needs at least 2 × DEPTH groups. */
const DEPTH = arg("churn-depth", 3);
const G = Math.max(2, Math.min(K, Math.round(N / CHURN_BATCH)));
/**
 * Raw churn (ours): our own feeder (bench/bgp_feeder.ts) holds RAW_N more prefixes (10.100.0.0/32
 * upwards, RAW_K attribute sets) in RAW_G groups and withdraws / announces them again from
 * pre-encoded UPDATEs, as fast as we read: no birdc round trip and no BIRD reaction time, so the
 * rate is ours. 0 leaves the phase out.
 */
const RAW_N = arg("raw-prefixes", 200_000);
const RAW_K = 100, RAW_G = 8, FEED_ASN = 65010;
const TRANSIT = [3356, 1299, 174, 2914, 6939, 6762, 3257, 6453, 701, 7018, 6461, 3491];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** RSS "with the table held" is read this long after the table is complete (the same for every receiver). */
const RSS_SETTLE_MS = 2000;

function v4(i: number): string {
  return `10.${200 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
}
function v6(i: number): string {
  return `2001:db8:f000::${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}`;
}

function importFilter(k: number): string {
  const path: number[] = [];
  for (let h = 0; h < 1 + (k % 5); h++) path.push(TRANSIT[(k * 7 + h * 3) % TRANSIT.length]);
  path.push(64513 + (k % 400));
  const prepends = path.reverse().map((a) => `bgp_path.prepend(${a});`).join(" ");
  return `import filter { ${prepends} bgp_community.add((${path[0]},${k % 1000})); ` +
    `bgp_community.add((65000,${
      k % 50
    })); bgp_large_community.add((65000,${k},1)); bgp_origin = ORIGIN_IGP; accept; };`;
}

function birdConf(lab: BgpLab, peers: string): string {
  const parts = [`router id ${lab.node("bird").v4};\nprotocol device {}\n`];
  for (let k = 0; k < K; k++) {
    parts.push(
      `protocol static s${k % G}_${k} { ipv4 { ${
        importFilter(k)
      } };\n  include "${lab.dir}/r4-${k}.conf";\n}\n`,
    );
    if (N6 > 0) {
      parts.push(
        `protocol static x${k} { ipv6 { ${importFilter(k)} };\n  include "${lab.dir}/r6-${k}.conf";\n}\n`,
      );
    }
  }
  parts.push(peers);
  return parts.join("");
}

function writeRoutes(lab: BgpLab): void {
  for (const [n, name, fmt, len] of [[N, "r4", v4, 32], [N6, "r6", v6, 128]] as const) {
    const files: string[][] = Array.from({ length: K }, () => []);
    for (let i = 0; i < n; i++) files[i % K].push(`route ${fmt(i)}/${len} blackhole;`);
    files.forEach((f, k) => Deno.writeTextFileSync(`${lab.dir}/${name}-${k}.conf`, f.join("\n") + "\n"));
  }
}

/** What a receiver reports. */
interface Receiver {
  name: string;
  count(family: 4 | 6): Promise<number>;
  /**
   * Ours only: route changes the per-prefix delta has written to the kernel so far, and pending
   * prefixes it found unchanged (withdrawn and re-announced between two of its flushes).
   */
  ops?(): { written: number; merged: number };
  pid(): number;
  stop(): Promise<void>;
}

/** Our controller in a child process; its stdout carries {"v4":n,"v6":n} on every change (5 ms). */
function startOurs(lab: BgpLab): Receiver {
  const us = lab.node("us"), b = lab.node("bird");
  const v8 = V8_FLAGS.length ? [`--v8-flags=${V8_FLAGS.join(",")}`] : [];
  const cfg: RouterChildConfig = {
    nodeIp4: us.v4,
    ...(N6 > 0 ? { nodeIp6: us.v6 } : {}),
    peers: [
      { address: b.v4, asn: 65000 },
      ...(N6 > 0 ? [{ address: b.v6, asn: 65000 }] : []),
      ...(RAW_N > 0 ? [{ address: lab.node("feed").v4, asn: FEED_ASN }] : []),
    ],
    asn: OUR_ASN,
    dir: lab.dir,
  };
  const { proc, last } = spawnRouterChild(us.ns, cfg, {
    denoFlags: [...v8, ...(Deno.env.get("CHILD_FLAGS")?.split(" ") ?? [])],
    stderr: "piped",
  });
  const log = Deno.openSync(`${lab.dir}/ours.log`, { write: true, create: true });
  proc.stderr.pipeTo(new WritableStream({ write: (c) => void log.writeSync(c) })).catch(() => {});
  return {
    name: "ours",
    count: (f) => Promise.resolve(f === 4 ? last().v4 : last().v6),
    ops: () => ({ written: last().ops, merged: last().merged }),
    pid: () => proc.pid,
    stop: async () => {
      try {
        proc.kill(Deno.env.get("CHILD_FLAGS") ? "SIGTERM" : "SIGKILL");
      } catch { /* gone */ }
      await proc.status;
    },
  };
}

async function startGobgp(lab: BgpLab): Promise<Receiver> {
  const g = lab.node("gobgp"), b = lab.node("bird");
  const nb = (addr: string, afi: string) =>
    `[[neighbors]]
  [neighbors.config]
    neighbor-address = "${addr}"
    peer-as = 65000
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 240
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "${afi}"
`;
  const gb: Gobgp = await lab.gobgp(
    "gobgp",
    `[global.config]\n  as = 65002\n  router-id = "${g.v4}"\n  local-address-list = ["${g.v4}", "${g.v6}"]\n` +
      nb(b.v4, "ipv4-unicast") + (N6 > 0 ? nb(b.v6, "ipv6-unicast") : ""),
  );
  return {
    name: "gobgpd",
    count: async (f) => {
      const out = await gb.cli("global", "rib", "summary", "-a", f === 4 ? "ipv4" : "ipv6");
      return Number(out.match(/Destination:\s*(\d+)/)?.[1] ?? 0);
    },
    pid: () => gb.pid!,
    stop: () => gb.stop(),
  };
}

interface Result {
  name: string;
  loadMs: number;
  rssMb: number;
  withdrawMs: number;
  churnPerS: number;
  /** Ours only: churn with BIRD's reaction time overlapped (see `pipelinedChurn`). */
  pipedPerS: number;
  /** Ours only: pipelined churn from the raw feeder (see `rawChurn`). */
  rawPerS: number;
  load6Ms: number;
  withdraw6Ms: number;
  rss6Mb: number;
}

/** Wall-clock ms since BIRD saw protocol `proto` Established (its Since column, ms precision). */
async function sinceUp(bird: Bird, proto: string, doneWall: number): Promise<number | null> {
  const line = (await bird.birdc("show", "protocols", proto)).split("\n").find((l) =>
    l.startsWith(proto + " ")
  );
  const since = line?.trim().split(/\s+/)[4] ?? "";
  const up = Date.parse(`${new Date(doneWall).toISOString().slice(0, 10)}T${since}Z`);
  return Number.isFinite(up) ? doneWall - up : null;
}

async function kernelCount(lab: BgpLab, counter: string, f: 4 | 6): Promise<number> {
  return Number((await lab.exec("us", [counter, "count", String(f)])).trim());
}

/**
 * Churn as a stream, as a peer's updates keep coming: BIRD is told, step after step, to
 * re-announce the group it withdrew D steps before and to withdraw the next one, and a step is
 * issued while the D - 1 before it are still reaching the kernel. BIRD's reaction time (~0.3–0.6 s
 * a step here, the same for any receiver) then overlaps our work instead of adding to it.
 *
 * Every change BIRD is told to send is accounted for: a step is done when the delta has written
 * it or found it merged (a prefix withdrawn and re-announced between two flushes: two changes,
 * no write) and the kernel holds N minus the withdrawn groups (checked against a netlink dump
 * afterwards). A group is re-announced only after D steps are accounted for, which keeps merges
 * rare; their share is printed, and the rate counts only changes written to the kernel. Ours
 * only: gobgpd shows no count of changes applied.
 */
/** Who churns: groups of prefixes it withdraws and announces again on request. */
interface ChurnFeed {
  groups: number;
  /** Prefixes held in all (every group announced). */
  total: number;
  perGroup(g: number): number;
  enable(g: number): Promise<void>;
  disable(g: number): Promise<void>;
}

async function pipelinedChurn(
  feed: ChurnFeed,
  r: Required<Receiver>,
): Promise<{ perS: number; merged: number; cpuUs: number; cores: number }> {
  const { groups: G, perGroup } = feed;
  if (G < 2 * DEPTH) return { perS: 0, merged: 0, cpuUs: 0, cores: 0 };
  /** Groups withdrawn before step i: i .. i + DEPTH - 1. */
  const out = (i: number) => Array.from({ length: DEPTH }, (_, j) => (i + j) % G);
  const held = (i: number) => feed.total - out(i).reduce((n, g) => n + perGroup(g), 0);
  for (const g of out(0)) await feed.disable(g);
  await waitFor("pipelined churn start", async () => (await r.count(4)) === held(0), 120_000, 5);
  const o0 = r.ops();
  const cpu0 = procStatus(r.pid()).cpu;
  const handled = () => {
    const o = r.ops();
    return o.written - o0.written + 2 * (o.merged - o0.merged);
  };
  /** Changes BIRD was told to send up to and including step i. */
  const want: number[] = [];
  const done = (i: number) => i < 0 || handled() >= want[i];
  let step = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < CHURN_S * 1000) {
    // Step `step` re-announces group step % G (withdrawn at step - DEPTH) and withdraws step + DEPTH.
    await waitFor(`pipelined churn step ${step - DEPTH}`, () => done(step - DEPTH), 120_000, 5);
    const a = step % G, b = (step + DEPTH) % G;
    await feed.enable(a);
    await feed.disable(b);
    want.push((want.at(-1) ?? 0) + perGroup(a) + perGroup(b));
    step++;
  }
  try {
    await waitFor(
      "pipelined churn end",
      async () => done(step - 1) && (await r.count(4)) === held(step),
      60_000,
      5,
    );
  } catch (e) {
    const have = await r.count(4);
    throw new Error(
      `pipelined churn: wanted ${want.at(-1)} changes handled and ${held(step)} routes, ` +
        `have ${handled()} and ${have}`,
      { cause: e },
    );
  }
  // The rate counts the changes written to the kernel only: a merged pair cost BIRD two
  // updates and us no write, and is left out (the run's time still includes them).
  const seconds = (performance.now() - t0) / 1000;
  const perS = (r.ops().written - o0.written) / seconds;
  const merged = 2 * (r.ops().merged - o0.merged) / want.at(-1)!;
  // Our process's CPU (every thread, kernel time of its route writes included) per change BIRD
  // sent: a figure that BIRD's timing and the machine's other load move far less than the rate.
  const cpu = procStatus(r.pid()).cpu - cpu0;
  const cpuUs = 1e6 * cpu / want.at(-1)!, cores = cpu / seconds;
  for (const g of out(step)) await feed.enable(g);
  await waitFor("pipelined churn restored", async () => (await r.count(4)) >= feed.total, 120_000, 5);
  return { perS, merged, cpuUs, cores };
}

/**
 * The phases for one receiver. The IPv6 table is taken by a fresh receiver (`start` again): its
 * RSS is then the IPv6 table's, not the high-water mark the 1M IPv4 phases left in the heap.
 */
/**
 * Pipelined churn fed by our raw feeder (see RAW_N) beside BIRD's table: the feeder's RAW_N
 * prefixes are loaded, churned in RAW_G groups, and leave with its session.
 */
async function rawChurn(
  lab: BgpLab,
  r: Required<Receiver>,
): Promise<{ perS: number; merged: number; cpuUs: number; cores: number }> {
  const script = new URL("./bgp_feeder.ts", import.meta.url).pathname;
  const proc = new Deno.Command("ip", {
    args: ["netns", "exec", lab.node("feed").ns, Deno.execPath(), "run", "-A", script, lab.node("us").v4]
      .concat([String(FEED_ASN), String(OUR_ASN), String(RAW_N), String(RAW_K), "100", String(RAW_G)]),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let ready = false;
  const reading = (async () => {
    for await (const l of lines(proc.stdout)) if (l.includes('"ready"')) ready = true;
  })();
  const w = proc.stdin.getWriter();
  const say = (l: string) => w.write(new TextEncoder().encode(l + "\n"));
  try {
    await waitFor("raw feeder ready", () => ready, 120_000, 50);
    await say("go");
    await waitFor(`${N + RAW_N} held`, async () => (await r.count(4)) === N + RAW_N, 120_000, 5);
    const size = Array.from({ length: RAW_G }, () => 0);
    for (let i = 0; i < RAW_N; i++) size[(i % RAW_K) % RAW_G]++;
    return await pipelinedChurn({
      groups: RAW_G,
      total: N + RAW_N,
      perGroup: (g) => size[g],
      enable: (g) => say(`a ${g}`),
      disable: (g) => say(`w ${g}`),
    }, r);
  } finally {
    await w.close().catch(() => {});
    await proc.status;
    await reading.catch(() => {});
    // The feeder's session is gone, and its prefixes with it.
    await waitFor("the raw feed's prefixes gone", async () => (await r.count(4)) === N, 120_000, 5);
  }
}

async function measure(
  lab: BgpLab,
  bird: Bird,
  start: () => Promise<Receiver>,
  counter: string,
): Promise<Result> {
  let r = await start();
  const ours = r.name === "ours";
  const [p4, p6] = ours ? ["to_us", "to_us6"] : ["to_gobgp", "to_gobgp6"];
  const reach = (f: 4 | 6, what: string, cmp: (c: number) => boolean) =>
    waitFor(`${r.name}: ${what}`, async () => cmp(await r.count(f)), 30 * 60_000, ours ? 5 : 50);
  const verify = async (f: 4 | 6, want: number) => {
    if (!ours) return;
    const k = await kernelCount(lab, counter, f);
    if (k !== want) throw new Error(`ours: the kernel holds ${k} proto 17 IPv${f} routes, expected ${want}`);
  };
  // Load.
  const t0 = performance.now();
  await bird.birdc("enable", p4);
  await reach(4, `all ${N} IPv4 prefixes`, (c) => c >= N);
  const loadMs = (await sinceUp(bird, p4, Date.now())) ?? performance.now() - t0;
  await verify(4, N);
  console.log(
    `  ${r.name}: ${N} IPv4 prefixes ${ours ? "in the kernel" : "in RIB"} ${(loadMs / 1000).toFixed(2)} s`,
  );
  await sleep(RSS_SETTLE_MS);
  const rssMb = rssKb(r.pid()) / 1024;
  console.log(`  ${r.name}: RSS with the table held ${rssMb.toFixed(0)} MB`);
  // Withdraw everything (UPDATEs with withdrawals; the session stays up).
  const tw = performance.now();
  await bird.birdc("disable", `"s*"`);
  await reach(4, "withdrawal of every IPv4 prefix", (c) => c === 0);
  const withdrawMs = performance.now() - tw;
  await verify(4, 0);
  console.log(`  ${r.name}: withdrawal of all ${N}: ${(withdrawMs / 1000).toFixed(2)} s`);
  // Re-load, then churn with the table held.
  await bird.birdc("enable", `"s*"`);
  await reach(4, "the table back", (c) => c >= N);
  const perGroup = (g: number) => {
    let n = 0;
    for (let k = g; k < K; k += G) n += Math.floor(N / K) + (k < N % K ? 1 : 0);
    return n;
  };
  let moved = 0, cycle = 0;
  const c0 = performance.now();
  while (performance.now() - c0 < CHURN_S * 1000) {
    const g = cycle % G, n = perGroup(g);
    await bird.birdc("disable", `"s${g}_*"`);
    await reach(4, "churn withdraw", (c) => c <= N - n);
    await bird.birdc("enable", `"s${g}_*"`);
    await reach(4, "churn re-announce", (c) => c >= N);
    moved += 2 * n;
    cycle++;
  }
  const churnPerS = moved / ((performance.now() - c0) / 1000);
  await verify(4, N);
  console.log(`  ${r.name}: churn ${Math.round(churnPerS)} prefixes/s with the table held`);
  const birdFeed: ChurnFeed = {
    groups: G,
    total: N,
    perGroup,
    enable: async (g) => void await bird.birdc("enable", `"s${g}_*"`),
    disable: async (g) => void await bird.birdc("disable", `"s${g}_*"`),
  };
  const piped = r.ops ? await pipelinedChurn(birdFeed, r as Required<Receiver>) : null;
  const pipedPerS = piped?.perS ?? 0;
  if (piped?.perS) {
    await verify(4, N);
    console.log(
      `  ${r.name}: pipelined churn ${Math.round(piped.perS)} kernel route changes/s with the table held (${
        (100 * piped.merged).toFixed(2)
      }% of BIRD's changes merged before a write, not counted); our CPU ${
        piped.cpuUs.toFixed(1)
      } µs per change (${piped.cores.toFixed(2)} cores busy)`,
    );
  }
  const raw = r.ops && RAW_N > 0 ? await rawChurn(lab, r as Required<Receiver>) : null;
  if (raw) {
    await verify(4, N);
    console.log(
      `  ${r.name}: raw-feed pipelined churn ${Math.round(raw.perS)} kernel route changes/s with ${
        N + RAW_N
      } held (${(100 * raw.merged).toFixed(2)}% merged, not counted); our CPU ${
        raw.cpuUs.toFixed(1)
      } µs per change (${raw.cores.toFixed(2)} cores busy)`,
    );
  }
  await bird.birdc("disable", `"s*"`);
  await reach(4, "IPv4 table gone", (c) => c === 0);
  // IPv6, in a fresh receiver.
  let load6Ms = 0, withdraw6Ms = 0, rss6Mb = 0;
  if (N6 > 0) {
    await r.stop();
    r = await start();
    const t6 = performance.now();
    await bird.birdc("enable", p6);
    await reach(6, `all ${N6} IPv6 prefixes`, (c) => c >= N6);
    load6Ms = (await sinceUp(bird, p6, Date.now())) ?? performance.now() - t6;
    await verify(6, N6);
    await sleep(RSS_SETTLE_MS);
    rss6Mb = rssKb(r.pid()) / 1024;
    const tw6 = performance.now();
    await bird.birdc("disable", `"x*"`);
    await reach(6, "withdrawal of every IPv6 prefix", (c) => c === 0);
    withdraw6Ms = performance.now() - tw6;
    await verify(6, 0);
    await bird.birdc("enable", `"x*"`);
    console.log(
      `  ${r.name}: ${N6} IPv6 prefixes ${(load6Ms / 1000).toFixed(2)} s, withdrawn in ${
        (withdraw6Ms / 1000).toFixed(2)
      } s, RSS ${rss6Mb.toFixed(0)} MB`,
    );
    await bird.birdc("disable", p6);
  }
  await bird.birdc("disable", p4);
  await bird.birdc("enable", `"s*"`);
  await r.stop();
  return {
    name: r.name,
    loadMs,
    rssMb,
    withdrawMs,
    churnPerS,
    pipedPerS,
    rawPerS: raw?.perS ?? 0,
    load6Ms,
    withdraw6Ms,
    rss6Mb,
  };
}

async function main(): Promise<void> {
  const lab = await BgpLab.create(["bird", "us", "gobgp", "ref", "feed"]);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => void lab.close().finally(() => Deno.exit(130)));
  }
  try {
    const counter = `${lab.dir}/nlrate`;
    await new Deno.Command("cc", {
      args: ["-O2", "-o", counter, new URL("./netlink_route_rate.c", import.meta.url).pathname],
    }).output().then((o) => {
      if (!o.success) throw new Error(`cc: ${new TextDecoder().decode(o.stderr)}`);
    });
    const b = lab.node("bird");
    // The kernel's own rate for the same numbers of routes, in a spare namespace.
    const k4 = JSON.parse(await lab.exec("ref", [counter, "4", String(N), b.v4]));
    const k6 = N6 > 0 ? JSON.parse(await lab.exec("ref", [counter, "6", String(N6), b.v6])) : null;
    console.log(
      `kernel limit (netlink_route_rate.c): IPv4 ${k4.addPerS} adds/s, ${k4.delPerS} deletes/s` +
        (k6 ? `; IPv6 ${k6.addPerS} adds/s, ${k6.delPerS} deletes/s` : ""),
    );
    writeRoutes(lab);
    const us = lab.node("us"), g = lab.node("gobgp");
    const bgp = (name: string, local: string, nb: string, asn: number, afi: string) =>
      `protocol bgp ${name} { disabled; local ${local} as 65000; neighbor ${nb} as ${asn}; hold time 240;
  keepalive time 1; ${afi} { import none; export all; }; }\n`;
    const conf = birdConf(
      lab,
      bgp("to_us", b.v4, us.v4, OUR_ASN, "ipv4") + bgp("to_us6", b.v6, us.v6, OUR_ASN, "ipv6") +
        bgp("to_gobgp", b.v4, g.v4, 65002, "ipv4") + bgp("to_gobgp6", b.v6, g.v6, 65002, "ipv6"),
    );
    const tb = performance.now();
    const bird = await lab.bird("bird", conf);
    await waitFor(
      "BIRD loads the static routes",
      async () => {
        const out = await bird.birdc("show", "route", "count");
        let total = 0;
        for (const m of out.matchAll(/(\d+) of (\d+) routes/g)) total += Number(m[2]);
        return total >= N + N6;
      },
      30 * 60_000,
      500,
    );
    console.log(
      `BIRD loaded ${N} + ${N6} static routes in ${((performance.now() - tb) / 1000).toFixed(1)} s`,
    );
    const results: Result[] = [];
    if (ONLY.includes("ours")) {
      console.log(`feeding our router (into the kernel, V8 flags ${V8_FLAGS.join(" ") || "(defaults)"}) ...`);
      const start = async () => {
        const r = startOurs(lab);
        await waitFor("our router ready", async () => (await r.count(4)) === 0 && rssKb(r.pid()) > 0, 60_000);
        await sleep(2000);
        return r;
      };
      results.push(await measure(lab, bird, start, counter));
    }
    if (ONLY.includes("gobgpd")) {
      console.log(`feeding gobgpd (RIB only) ...`);
      results.push(await measure(lab, bird, () => startGobgp(lab), counter));
    }
    const o = results.find((r) => r.name === "ours"), gg = results.find((r) => r.name === "gobgpd");
    console.log(`\nRouter full feed from BIRD: ${N} IPv4 + ${N6} IPv6 prefixes, ${K} attribute sets`);
    console.log(
      "receiver   load      RSS      withdraw   churn      pipelined  IPv6 load  IPv6 withdraw  RSS(v6)",
    );
    for (const r of results) {
      console.log(
        `${r.name.padEnd(10)} ${(r.loadMs / 1000).toFixed(2).padStart(6)} s ${
          r.rssMb.toFixed(0).padStart(5)
        } MB ${(r.withdrawMs / 1000).toFixed(2).padStart(6)} s ${
          Math.round(r.churnPerS).toString().padStart(8)
        }/s ${(r.pipedPerS ? Math.round(r.pipedPerS) + "/s" : "-").padStart(9)} ${
          (r.load6Ms / 1000).toFixed(2).padStart(7)
        } s ${(r.withdraw6Ms / 1000).toFixed(2).padStart(9)} s ${r.rss6Mb.toFixed(0).padStart(7)} MB`,
      );
    }
    const x = (a: number, b: number) => (a / b).toFixed(2) + "×";
    if (o && gg) {
      console.log(
        `ours (kernel) / gobgpd (RIB only): load ${x(o.loadMs, gg.loadMs)} (target ≤ 1), RSS ${
          x(o.rssMb, gg.rssMb)
        } (target ≤ 0.5), withdraw ${x(o.withdrawMs, gg.withdrawMs)}, churn ${x(o.churnPerS, gg.churnPerS)}` +
          (N6 > 0
            ? `, IPv6 load ${x(o.load6Ms, gg.load6Ms)}, IPv6 withdraw ${x(o.withdraw6Ms, gg.withdraw6Ms)}`
            : ""),
      );
    }
    if (o) {
      console.log(
        `ours / kernel limit: load ${x(N / (o.loadMs / 1000), k4.addPerS)} of its add rate, withdraw ${
          x(N / (o.withdrawMs / 1000), k4.delPerS)
        } of its delete rate` +
          (k6 && o.load6Ms ? `, IPv6 load ${x(N6 / (o.load6Ms / 1000), k6.addPerS)}` : "") +
          `; pipelined churn ${Math.round(o.pipedPerS)}/s fed by BIRD, ${Math.round(o.rawPerS)}/s fed raw = ${
            x(o.rawPerS || o.pipedPerS, 2 / (1 / k4.addPerS + 1 / k4.delPerS))
          } of the kernel's mixed add/delete rate (target ≥ 100000/s)`,
      );
    }
  } catch (e) {
    console.error(`our router's log (tail):\n${lab.log("ours.log").split("\n").slice(-30).join("\n")}`);
    throw e;
  } finally {
    await Deno.copyFile(`${lab.dir}/ours.log`, "/tmp/router-fullfeed-ours.log").catch(() => {});
    await lab.close();
  }
}

if (import.meta.main) await main();

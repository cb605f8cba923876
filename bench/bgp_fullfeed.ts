/**
 * Full-feed benchmark (not a test). The same table goes to our speaker, to gobgpd and to FRR's
 * bgpd, one receiver at a time in the same run, twice:
 *
 * 1. raw feed (`bench/bgp_feeder.ts`): N pre-encoded prefixes written as fast as the receiver
 *    reads; time from "go" (session already up) until the receiver holds all N;
 * 2. BIRD feed (what the issue asks): BIRD static routes exported over eBGP; time from the
 *    session coming up (BIRD's `show protocols` Since column) until the receiver holds all N;
 *    then a steady churn: BIRD disables and re-enables groups of static protocols (withdraw +
 *    re-announce of B prefixes), rate = 2·B / time until the receiver is back at N, averaged.
 *
 * For each: resident memory (VmRSS) with the full table, and ratios against gobgpd and FRR.
 *
 *   deno run -A bench/bgp_fullfeed.ts [--prefixes 1000000] [--protocols 500] [--churn-seconds 5]
 *     [--poll-ms 50] [--feeder raw|bird|both] [--only ours,gobgpd,frr] [--v8 FLAGS]
 *
 * Feed: N /32s from 10.200.0.0 upwards (inside lab namespaces only), in K attribute sets (BIRD:
 * K static protocols whose import filters set a realistic AS path of 2–6 transit ASNs, two
 * communities and a large community; the raw feeder builds the same sets). BIRD prepends its AS
 * 65000. Receivers: ours AS 65001 (child Deno process, no best-path subscriber), gobgpd AS 65002,
 * FRR bgpd AS 65003 run with -Z (no zebra, so no kernel installation; its count is pfxRcd).
 * Counts are polled through each daemon's own CLI (`gobgp global rib summary`, `vtysh show bgp
 * summary json`); polling costs the daemon some time, so use --poll-ms 250 or more for final
 * figures. BIRD 2.0.12 can leave the last UPDATEs of a table unsent until its event loop next
 * wakes up (up to 3 s when idle; seen with tcpdump: window open, nothing sent, then the rest and
 * End-of-RIB exactly 3 s later); `keepalive time 1` on BIRD's side bounds that to ~1 s for every
 * receiver. The raw feed has no such sender effect.
 *
 * Addresses: lab nodes 10.240.0.x (tests/fixtures/bgp_peers.ts).
 *
 * @module
 */

import { BgpLab, Frr, type Gobgp, rssKb, type SpeakerProc, waitFor } from "../tests/fixtures/bgp_peers.ts";
import { lines } from "../tests/fixtures/lines.ts";

function arg(name: string, dflt: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
}
const N = arg("prefixes", 1_000_000);
const K = arg("protocols", 500);
const CHURN_S = arg("churn-seconds", 5);
/** How often the receivers' counts are polled (each poll runs the daemon's CLI, which costs it a little). */
const POLL_MS = arg("poll-ms", 50);
/**
 * V8 flags for our speaker's process (default: a 2 MB young-generation semi-space, which keeps
 * ~30 MB of scavenger space out of RSS at no measurable speed cost; what we recommend for the
 * agent binary). `--v8 ""` measures V8's defaults.
 */
const V8_FLAGS = (() => {
  const i = Deno.args.indexOf("--v8");
  const v = i >= 0 ? Deno.args[i + 1] : "--max-semi-space-size=2";
  return v ? v.split(",") : [];
})();
/** Receivers to run: any of ours,gobgpd,frr (default all). */
const ONLY = (() => {
  const i = Deno.args.indexOf("--only");
  return i >= 0 ? Deno.args[i + 1].split(",") : ["ours", "gobgpd", "frr"];
})();
if (N > 56 * 65536) {
  throw new RangeError(`--prefixes ${N}: at most ${56 * 65536} /32s fit in 10.200.0.0-10.255.255.255`);
}

const TRANSIT = [3356, 1299, 174, 2914, 6939, 6762, 3257, 6453, 701, 7018, 6461, 3491];

function birdConf(lab: BgpLab, lines: (k: number) => string): string {
  const b = lab.node("bird");
  const parts = [`router id ${b.v4};\nprotocol device {}\n`];
  for (let k = 0; k < K; k++) {
    const len = 1 + (k % 5);
    const path: number[] = [];
    for (let h = 0; h < len; h++) path.push(TRANSIT[(k * 7 + h * 3) % TRANSIT.length]);
    path.push(64512 + (k % 400)); // origin AS (below 65000: the receivers use 65001-65003)
    const prepends = path.reverse().map((a) => `bgp_path.prepend(${a});`).join(" ");
    parts.push(
      `protocol static s${k} { ipv4 { import filter { ${prepends} bgp_community.add((${path[0]},${
        k % 1000
      })); ` +
        `bgp_community.add((65000,${
          k % 50
        })); bgp_large_community.add((65000,${k},1)); bgp_origin = ORIGIN_IGP; accept; }; };\n` +
        `  include "${lab.dir}/routes-${k}.conf";\n}\n`,
    );
  }
  parts.push(lines(0));
  return parts.join("");
}

function writeRoutes(lab: BgpLab): void {
  const files: string[][] = Array.from({ length: K }, () => []);
  for (let i = 0; i < N; i++) {
    files[i % K].push(`route 10.${200 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32 blackhole;`);
  }
  files.forEach((f, k) => Deno.writeTextFileSync(`${lab.dir}/routes-${k}.conf`, f.join("\n") + "\n"));
}

interface Receiver {
  name: string;
  proto: string;
  count(): Promise<number>;
  pid(): number;
  stop(): Promise<void>;
}

interface Result {
  name: string;
  loadMs: number;
  totalMs: number;
  rssMb: number;
  churnPerS: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measure(
  lab: BgpLab,
  r: Receiver,
  birdc: (...a: string[]) => Promise<string>,
): Promise<Result> {
  const t0 = performance.now();
  await birdc("enable", r.proto);
  let first = 0;
  let last = -1;
  let lastChange = performance.now();
  await waitFor(
    `${r.name} to hold ${N} prefixes`,
    async () => {
      const c = await r.count();
      if (c > 0 && !first) first = performance.now();
      if (c !== last) [last, lastChange] = [c, performance.now()];
      else if (performance.now() - lastChange > 5_000) {
        console.log(
          `  ${r.name}: ${c} of ${N} prefixes, unchanged for ${
            ((performance.now() - lastChange) / 1000).toFixed(0)
          } s`,
        );
        lastChange = performance.now();
      }
      return c >= N;
    },
    30 * 60_000,
    POLL_MS,
  );
  const doneWall = Date.now();
  const totalMs = performance.now() - t0;
  void first;
  // The clock that counts runs from the moment BIRD saw the session Established (its `show
  // protocols` "Since" column, ms precision, wall clock) to the poll that saw all N: session
  // set-up depends on each daemon's connect timers, and a busy receiver may answer a poll late.
  const line = (await birdc("show", "protocols", r.proto)).split("\n").find((l) =>
    l.startsWith(r.proto + " ")
  );
  const since = line?.trim().split(/\s+/)[4] ?? "";
  const upWall = Date.parse(`${new Date(doneWall).toISOString().slice(0, 10)}T${since}Z`);
  const loadMs = Number.isFinite(upWall) ? doneWall - upWall : totalMs;
  await sleep(1000);
  const rssMb = rssKb(r.pid()) / 1024;
  // Churn: flip groups of static protocols off and on.
  const per = Math.ceil(N / K);
  const group = Math.max(1, Math.round(Math.min(20_000, N / 10) / per));
  let moved = 0;
  const c0 = performance.now();
  let cycle = 0;
  while (performance.now() - c0 < CHURN_S * 1000) {
    const names = Array.from({ length: group }, (_, j) => `s${(cycle * group + j) % K}`);
    await Promise.all(names.map((n) => birdc("disable", n)));
    await waitFor(
      `${r.name} withdraw`,
      async () => (await r.count()) <= N - group * per + group,
      120_000,
      20,
    );
    await Promise.all(names.map((n) => birdc("enable", n)));
    await waitFor(`${r.name} re-announce`, async () => (await r.count()) >= N, 120_000, 20);
    moved += 2 * group * per;
    cycle++;
  }
  const churnPerS = moved / ((performance.now() - c0) / 1000);
  await birdc("disable", r.proto);
  await r.stop();
  void lab;
  return { name: r.name, loadMs, totalMs, rssMb, churnPerS };
}

interface Neighbor {
  addr: string;
  asn: number;
  /** The receiver waits for the neighbour to connect (the raw feeder dials). */
  passive: boolean;
}

/** Our speaker in its namespace, peering with `nb`. */
async function startOurs(lab: BgpLab, nb: Neighbor, proto: string): Promise<Receiver> {
  const us = lab.node("us");
  const sp: SpeakerProc = lab.speaker("us", { v8Flags: V8_FLAGS });
  await sp.call("create", { asn: 65001, routerId: us.v4, listen: { addresses: [us.v4], port: 179 } }, {
    events: false,
  });
  await sp.call("addPeer", {
    address: nb.addr,
    asn: nb.asn,
    holdTime: 240,
    connectRetry: 1,
    passive: nb.passive,
  });
  await sp.call("start");
  return {
    name: "ours",
    proto,
    count: () => sp.call<number>("locRibSize"),
    pid: () => sp.pid,
    stop: () => sp.stop(),
  };
}

async function startGobgp(lab: BgpLab, nb: Neighbor, proto: string): Promise<Receiver> {
  const g = lab.node("gobgp");
  const gb: Gobgp = await lab.gobgp(
    "gobgp",
    `[global.config]
  as = 65002
  router-id = "${g.v4}"
  local-address-list = ["${g.v4}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${nb.addr}"
    peer-as = ${nb.asn}
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 240
${nb.passive ? "  [neighbors.transport.config]\n    passive-mode = true" : ""}
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
`,
  );
  return {
    name: "gobgpd",
    proto,
    count: async () => {
      const out = await gb.cli("global", "rib", "summary", "-a", "ipv4");
      return Number(out.match(/Destination:\s*(\d+)/)?.[1] ?? 0);
    },
    pid: () => gb.pid!,
    stop: () => gb.stop(),
  };
}

async function startFrr(lab: BgpLab, nb: Neighbor, proto: string): Promise<Receiver> {
  const f = lab.node("frr");
  const fr = new Frr(
    lab,
    "frr",
    `frr defaults traditional
hostname frr
router bgp 65003
 bgp router-id ${f.v4}
 no bgp ebgp-requires-policy
 neighbor ${nb.addr} remote-as ${nb.asn}
 neighbor ${nb.addr} timers connect 1
 neighbor ${nb.addr} timers 80 240
 ${nb.passive ? `neighbor ${nb.addr} passive` : ""}
!
`,
  );
  await startFrrNoZebra(lab, fr);
  return {
    name: "frr",
    proto,
    count: async () => {
      const j = await fr.json("show bgp ipv4 unicast summary json") as {
        peers?: Record<string, { pfxRcd?: number }>;
      };
      return j.peers?.[nb.addr]?.pfxRcd ?? 0;
    },
    pid: () => fr.pids()[0],
    stop: () => fr.stop(),
  };
}

const starters = [startOurs, startGobgp, startFrr];

/** Raw feed: our pre-encoded stream pushed as fast as the receiver reads (receiver-bound only). */
async function measureRaw(lab: BgpLab, start: typeof startOurs, target: string): Promise<Result> {
  const feed = lab.node("feed");
  const r = await start(lab, { addr: feed.v4, asn: 65000, passive: true }, "raw");
  const script = new URL("./bgp_feeder.ts", import.meta.url).pathname;
  const proc = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      feed.ns,
      Deno.execPath(),
      "run",
      "-A",
      script,
      target,
      "65000",
      "0",
      String(N),
      String(K),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const said: string[] = [];
  const reading = (async () => {
    for await (const l of lines(proc.stdout)) said.push(l);
  })();
  const w = proc.stdin.getWriter();
  try {
    await waitFor(
      `feeder ready for ${r.name}`,
      () => said.some((l) => l.includes('"ready"')),
      10 * 60_000,
      100,
    );
    const t0 = performance.now();
    await w.write(new TextEncoder().encode("go\n"));
    await waitFor(
      `${r.name} to hold ${N} prefixes (raw feed)`,
      async () => (await r.count()) >= N,
      30 * 60_000,
      POLL_MS,
    );
    const loadMs = performance.now() - t0;
    await sleep(1000);
    const rssMb = rssKb(r.pid()) / 1024;
    return { name: r.name, loadMs, totalMs: loadMs, rssMb, churnPerS: 0 };
  } finally {
    await w.close().catch(() => {});
    try {
      proc.kill("SIGKILL");
    } catch { /* exited */ }
    await proc.status;
    await reading.catch(() => {});
    await r.stop();
  }
}

function report(title: string, results: Result[], churn: boolean): void {
  if (results.length < 3) return; // ratios need all three receivers
  const [o, gg, ff] = results;
  const ratio = (a: number, b: number) => (a / b).toFixed(2);
  console.log(`\n${title}`);
  console.log(`receiver   load time   RSS${churn ? "      churn" : ""}`);
  for (const r of results) {
    console.log(
      `${r.name.padEnd(10)} ${(r.loadMs / 1000).toFixed(2).padStart(7)} s ${
        r.rssMb.toFixed(0).padStart(6)
      } MB` +
        (churn ? ` ${Math.round(r.churnPerS).toString().padStart(8)} /s` : ""),
    );
  }
  const c = (a: Result, b: Result) => churn ? `, churn ${ratio(a.churnPerS, b.churnPerS)}×` : "";
  console.log(
    `ours / gobgpd: time ${ratio(o.loadMs, gg.loadMs)}×, memory ${ratio(o.rssMb, gg.rssMb)}×${
      c(o, gg)
    } (targets: time < 1, memory ≤ 0.5)`,
  );
  console.log(
    `ours / FRR:    time ${ratio(o.loadMs, ff.loadMs)}×, memory ${ratio(o.rssMb, ff.rssMb)}×${
      c(o, ff)
    } (target: time ≤ 2)`,
  );
}

async function main(): Promise<void> {
  console.log(`our speaker runs with V8 flags: ${V8_FLAGS.join(" ") || "(defaults)"}`);
  const feeder = Deno.args.includes("--feeder") ? Deno.args[Deno.args.indexOf("--feeder") + 1] : "both";
  const lab = await BgpLab.create(["bird", "us", "gobgp", "frr", "feed"]);
  // Interrupted runs must not leave namespaces behind.
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => void lab.close().finally(() => Deno.exit(130)));
  }
  try {
    const b = lab.node("bird");
    const targets = [lab.node("us").v4, lab.node("gobgp").v4, lab.node("frr").v4];
    if (feeder === "raw" || feeder === "both") {
      const results: Result[] = [];
      for (let i = 0; i < 3; i++) {
        if (!ONLY.includes(["ours", "gobgpd", "frr"][i])) continue;
        const res = await measureRaw(lab, starters[i], targets[i]);
        console.log(
          `  raw feed → ${res.name}: all ${N} in RIB after ${(res.loadMs / 1000).toFixed(2)} s, RSS ${
            res.rssMb.toFixed(0)
          } MB`,
        );
        results.push(res);
      }
      report(
        `BGP full feed from a raw pre-encoded stream, ${N} IPv4 prefixes, ${K} attribute sets`,
        results,
        false,
      );
    }
    if (feeder === "bird" || feeder === "both") {
      writeRoutes(lab);
      const peers = [
        { proto: "to_us", addr: targets[0], asn: 65001 },
        { proto: "to_gobgp", addr: targets[1], asn: 65002 },
        { proto: "to_frr", addr: targets[2], asn: 65003 },
      ];
      const conf = birdConf(
        lab,
        () =>
          peers.map((p) =>
            `protocol bgp ${p.proto} { disabled; local ${b.v4} as 65000; neighbor ${p.addr} as ${p.asn}; hold time 240;
  keepalive time 1;
  ipv4 { import none; export all; }; }\n`
          ).join(""),
      );
      const tb = performance.now();
      const bird = await lab.bird("bird", conf);
      await waitFor(
        "BIRD loads the static routes",
        async () => {
          const out = await bird.birdc("show", "route", "count");
          const m = out.match(/(\d+) of (\d+) routes/);
          return m && Number(m[2]) >= N;
        },
        30 * 60_000,
        500,
      );
      console.log(`BIRD loaded ${N} static routes in ${((performance.now() - tb) / 1000).toFixed(1)} s`);
      const birdc = (...a: string[]) => bird.birdc(...a);
      const results: Result[] = [];
      for (let i = 0; i < 3; i++) {
        if (!ONLY.includes(["ours", "gobgpd", "frr"][i])) continue;
        const r = await starters[i](lab, { addr: b.v4, asn: 65000, passive: false }, peers[i].proto);
        console.log(`feeding ${N} prefixes from BIRD to ${r.name} ...`);
        const res = await measure(lab, r, birdc);
        console.log(
          `  ${r.name}: all in RIB ${(res.loadMs / 1000).toFixed(2)} s after the session came up ` +
            `(${(res.totalMs / 1000).toFixed(2)} s after enabling the session), RSS ${
              res.rssMb.toFixed(0)
            } MB, ` +
            `churn ${Math.round(res.churnPerS)} prefix updates/s`,
        );
        results.push(res);
      }
      report(
        `BGP full feed from BIRD, ${N} IPv4 prefixes, ${K} attribute sets (one receiver at a time)`,
        results,
        true,
      );
    }
  } finally {
    await lab.close();
  }
}

/** bgpd alone (-Z: no zebra), so FRR's figure is the BGP daemon's, like ours and gobgpd's. */
async function startFrrNoZebra(lab: BgpLab, fr: Frr): Promise<void> {
  const d = fr.dir;
  lab.spawn("frr", [
    "/usr/lib/frr/bgpd",
    "-Z",
    "-f",
    fr.confPath,
    "-i",
    `${d}/bgpd.pid`,
    "--vty_socket",
    d,
    "-P",
    "0",
    "-S",
  ], "frr-bgpd.log");
  await waitFor("bgpd answers", async () => {
    await fr.vtysh("show bgp summary");
    return true;
  }, 15_000);
}

if (import.meta.main) await main();

/**
 * Many BGP sessions (not a test): our speaker as a route reflector with P clients (default 1,000),
 * each client a session of the peer simulator (bench/bgp_peer_sim.ts) in one namespace holding P
 * addresses; then gobgpd as the same route reflector to its own simulator, in the same run. Each
 * reflector has its own simulator namespace ("sim-ours", "sim-gobgpd"), started fresh for it, so
 * nothing left by the first half (sockets, a killed process) can touch the second.
 *
 * Figures per reflector: time from start until all P sessions are Established (target < 30 s),
 * how many were up at 5/10/20/30 s, time until every client has received the other P−1 clients'
 * /24s (P·(P−1) reflected routes), CPU seconds of the reflector and of the simulator (so a run
 * shows whether the simulator was the limit), and resident memory per session: (RSS with all
 * sessions up and routes reflected − RSS of the same daemon with no peers) / P. Our base is the
 * speaker before any peer is added; gobgpd's is a gobgpd started with no neighbours and stopped
 * before the measured one starts. Ratios against gobgpd.
 *
 *   deno run -A bench/bgp_many_peers.ts [--peers 1000] [--only ours,gobgpd] [--reflect-timeout 300]
 *     [--routes 0] [--v8 --max-semi-space-size=2] [--prof DIR]
 *
 * `--prof DIR` runs our speaker with `--cpu-prof --cpu-prof-dir=DIR` (written when it stops).
 *
 * Addresses: lab nodes 10.240.0.x (tests/fixtures/bgp_peers.ts); simulated clients 10.241.1.1 …
 * 10.241.k.250 on each simulator namespace's loopback, routed from its reflector's namespace;
 * their /24s 10.100.0.0 upwards (lab only; nothing is forwarded).
 *
 * @module
 */
import { BgpLab, type Gobgp, waitFor } from "../tests/fixtures/bgp_peers.ts";
import { procStatus } from "./proc_status.ts";
import { lines } from "../tests/fixtures/lines.ts";

function arg(name: string, dflt: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
}
function strArg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}
const P = arg("peers", 1000);
const ONLY = (strArg("only") ?? "ours,gobgpd").split(",");
const V8_FLAGS = (strArg("v8") ?? "--max-semi-space-size=2").split(",").filter(Boolean);
const PROF_DIR = strArg("prof");
const ASN = 64512;
/** How long to wait for every client to hold every other client's route. */
const REFLECT_TIMEOUT_S = arg("reflect-timeout", 300);
/** How long to wait for all sessions before giving up on that reflector (reported, not fatal). */
const UP_TIMEOUT_S = arg("up-timeout", 300);
/** `--routes 0`: clients announce nothing (session cost alone, no reflection). */
const ROUTES = arg("routes", 1) !== 0;
/** Seconds after start at which the number of Established sessions is reported. */
const MARKS = [5, 10, 20, 30];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function client(i: number): string {
  return `10.241.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

function loadavg(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}

interface SimState {
  acceptErrors: number;
  accepted: number;
  openSent: number;
  openReceived: number;
  established: number;
  received: number;
}

/** The simulator in namespace `node`; `state()` is its last report. */
function startSim(lab: BgpLab, node: string) {
  const proc = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      lab.node(node).ns,
      Deno.execPath(),
      "run",
      "-A",
      "--unstable-net",
      new URL("./bgp_peer_sim.ts", import.meta.url).pathname,
      String(ASN),
      "179",
      ROUTES ? "1" : "0",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let last: SimState = {
    acceptErrors: 0,
    accepted: 0,
    openSent: 0,
    openReceived: 0,
    established: 0,
    received: 0,
  };
  let exited = false;
  proc.status.then(() => exited = true);
  let ready = false;
  (async () => {
    for await (const l of lines(proc.stdout)) {
      last = JSON.parse(l);
      ready = true;
    }
  })().catch(() => {});
  return {
    pid: proc.pid,
    /** Resolves once the simulator reports (its listeners are open before the first report). */
    ready: () =>
      waitFor(
        `simulator in ${node} to report`,
        () => {
          if (exited) throw new Error(`simulator in ${node} exited`);
          return ready;
        },
        30_000,
        50,
      ),
    state: () => {
      if (exited) throw new Error(`simulator in ${node} exited`);
      return last;
    },
    stop: async () => {
      try {
        proc.kill("SIGKILL");
      } catch { /* gone */ }
      await proc.status;
    },
  };
}

/** TCP listen-queue overflows in a namespace (non-zero: the simulator dropped SYNs). */
async function listenDrops(lab: BgpLab, node: string): Promise<number> {
  const out = await lab.exec(node, ["nstat", "-az", "TcpExtListenDrops"], [0, 1]).catch(() => "");
  return Number(/TcpExtListenDrops\s+(\d+)/.exec(out)?.[1] ?? NaN);
}

interface Result {
  name: string;
  upMs: number;
  marks: number[];
  reflectedMs: number;
  rssMb: number;
  perSessionKb: number;
  cpuS: number;
  simCpuS: number;
  simDrops: number;
}

interface Started {
  pid: number;
  baseKb: number;
  t0: number;
  stop: () => Promise<void>;
}

async function measure(
  name: string,
  lab: BgpLab,
  simNode: string,
  start: () => Promise<Started>,
): Promise<Result> {
  const sim = startSim(lab, simNode);
  try {
    await sim.ready();
    const r = await start();
    const cpu0 = procStatus(r.pid).cpu;
    const simCpu0 = procStatus(sim.pid).cpu;
    let upMs = NaN;
    const marks: number[] = [];
    await waitFor(
      `${name}: ${P} sessions Established`,
      () => {
        const el = performance.now() - r.t0;
        const s = sim.state();
        while (marks.length < MARKS.length && el >= MARKS[marks.length] * 1000) marks.push(s.established);
        if (s.established >= P) upMs = el;
        return s.established >= P;
      },
      UP_TIMEOUT_S * 1000,
      50,
    ).catch((err) => {
      if (String(err).includes("exited")) throw err;
      console.log(`  ${name}: not all Established after ${UP_TIMEOUT_S} s: ${JSON.stringify(sim.state())}`);
    });
    let reflectedMs = NaN;
    const want = ROUTES ? P * (P - 1) : 0;
    if (!Number.isNaN(upMs)) {
      await waitFor(
        `${name}: ${want} reflected routes`,
        () => {
          if (sim.state().received >= want) reflectedMs = performance.now() - r.t0;
          return !Number.isNaN(reflectedMs);
        },
        REFLECT_TIMEOUT_S * 1000,
        100,
      ).catch((err) => {
        if (String(err).includes("exited")) throw err;
        // Reported, not fatal: the session figures stand on their own.
        console.log(
          `  ${name}: ${sim.state().received} of ${want} routes reflected after ${REFLECT_TIMEOUT_S} s`,
        );
      });
    }
    while (marks.length < MARKS.length) marks.push(sim.state().established);
    await sleep(2000);
    const st = procStatus(r.pid);
    const res: Result = {
      name,
      upMs,
      marks,
      reflectedMs,
      rssMb: st.rss,
      perSessionKb: (st.rss * 1024 - r.baseKb) / P,
      cpuS: st.cpu - cpu0,
      simCpuS: procStatus(sim.pid).cpu - simCpu0,
      simDrops: await listenDrops(lab, simNode),
    };
    console.log(
      `  ${name}: ${P} Established in ${(upMs / 1000).toFixed(2)} s (up at ${
        MARKS.map((m, i) => `${m} s: ${marks[i]}`).join(", ")
      }), all ${want} routes reflected in ${(reflectedMs / 1000).toFixed(2)} s, RSS ${
        res.rssMb.toFixed(0)
      } MB (${res.perSessionKb.toFixed(0)} kB per session), CPU ${res.cpuS.toFixed(1)} s, simulator CPU ${
        res.simCpuS.toFixed(1)
      } s, ` +
        `simulator listen drops ${res.simDrops}, simulator ${JSON.stringify(sim.state())}; load ${loadavg()}`,
    );
    await r.stop();
    return res;
  } finally {
    await sim.stop();
  }
}

function gobgpConf(g: { v4: string }, peers: number): string {
  const nbs: string[] = [];
  for (let i = 0; i < peers; i++) {
    nbs.push(`[[neighbors]]
  [neighbors.config]
    neighbor-address = "${client(i)}"
    peer-as = ${ASN}
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 90
  [neighbors.route-reflector.config]
    route-reflector-client = true
    route-reflector-cluster-id = "${g.v4}"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
`);
  }
  return `[global.config]\n  as = ${ASN}\n  router-id = "${g.v4}"\n  local-address-list = ["${g.v4}"]\n` +
    nbs.join("");
}

async function main(): Promise<void> {
  const lab = await BgpLab.create(["rr", "sim-ours", "gobgp", "sim-gobgpd"]);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => void lab.close().finally(() => Deno.exit(130)));
  }
  try {
    console.log(`load average at start: ${loadavg()} (${navigator.hardwareConcurrency} CPUs)`);
    for (const [rr, simNode] of [["rr", "sim-ours"], ["gobgp", "sim-gobgpd"]]) {
      const sim = lab.node(simNode);
      const lines: string[] = [];
      for (let i = 0; i < P; i++) lines.push(`addr add ${client(i)}/32 dev lo`);
      const add = new Deno.Command("ip", { args: ["-n", sim.ns, "-batch", "-"], stdin: "piped" }).spawn();
      const w = add.stdin.getWriter();
      await w.write(new TextEncoder().encode(lines.join("\n") + "\n"));
      await w.close();
      if (!(await add.status).success) throw new Error(`adding the client addresses to ${simNode} failed`);
      await lab.exec(simNode, [
        "sysctl",
        "-q",
        "-w",
        "net.core.somaxconn=4096",
        "net.ipv4.tcp_max_syn_backlog=4096",
      ]);
      await lab.exec(rr, ["ip", "route", "add", "10.241.0.0/16", "via", sim.v4]);
    }
    const results: Result[] = [];
    if (ONLY.includes("ours")) {
      results.push(
        await measure("ours", lab, "sim-ours", async () => {
          const rr = lab.node("rr");
          const deno = PROF_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROF_DIR}`] : [];
          const sp = lab.speaker("rr", { v8Flags: V8_FLAGS, denoFlags: deno });
          await sp.call("create", {
            asn: ASN,
            routerId: rr.v4,
            listen: { addresses: [rr.v4], port: 179 },
            clusterId: rr.v4,
          }, { events: false });
          await sleep(500);
          const baseKb = procStatus(sp.pid).rss * 1024;
          for (let i = 0; i < P; i++) {
            await sp.call("addPeer", {
              address: client(i),
              asn: ASN,
              routeReflectorClient: true,
              connectRetry: 1,
              holdTime: 90,
            });
          }
          const t0 = performance.now();
          await sp.call("start");
          return { pid: sp.pid, baseKb, t0, stop: () => sp.stop(PROF_DIR ? 60_000 : 3000) };
        }),
      );
    }
    if (ONLY.includes("gobgpd")) {
      results.push(
        await measure("gobgpd", lab, "sim-gobgpd", async () => {
          const g = lab.node("gobgp");
          // The base: the same daemon with no neighbours, stopped before the measured one starts.
          const idle: Gobgp = await lab.gobgp("gobgp", gobgpConf(g, 0));
          await sleep(500);
          const baseKb = procStatus(idle.pid!).rss * 1024;
          await idle.stop();
          const conf = gobgpConf(g, P);
          const t0 = performance.now();
          const gb: Gobgp = await lab.gobgp("gobgp", conf);
          return { pid: gb.pid!, baseKb, t0, stop: () => gb.stop() };
        }),
      );
    }
    console.log(
      `\nRoute reflector with ${P} clients (peer simulator bench/bgp_peer_sim.ts); load ${loadavg()}`,
    );
    console.log("reflector  all Established   all reflected   RSS      per session   CPU      simulator CPU");
    for (const r of results) {
      console.log(
        `${r.name.padEnd(10)} ${(r.upMs / 1000).toFixed(2).padStart(10)} s ${
          (r.reflectedMs / 1000).toFixed(2).padStart(12)
        } s ${r.rssMb.toFixed(0).padStart(6)} MB ${r.perSessionKb.toFixed(0).padStart(8)} kB ${
          r.cpuS.toFixed(1).padStart(7)
        } s ${r.simCpuS.toFixed(1).padStart(8)} s`,
      );
    }
    const o = results.find((r) => r.name === "ours"), g = results.find((r) => r.name === "gobgpd");
    if (o && g) {
      console.log(
        `ours / gobgpd: Established ${(o.upMs / g.upMs).toFixed(2)}×, reflected ${
          (o.reflectedMs / g.reflectedMs).toFixed(2)
        }×, RSS ${(o.rssMb / g.rssMb).toFixed(2)}×, per session ${
          (o.perSessionKb / g.perSessionKb).toFixed(2)
        }×, CPU ${(o.cpuS / g.cpuS).toFixed(2)}×`,
      );
    }
    if (o) console.log(`target: all ${P} Established < 30 s: ${o.upMs < 30_000 ? "met" : "missed"}`);
  } finally {
    await lab.close();
  }
}

if (import.meta.main) await main();

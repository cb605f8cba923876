/**
 * Many BGP sessions (not a test): our speaker as a route reflector with P clients (default 1,000),
 * each client a session of the peer simulator (bench/bgp_peer_sim.ts) in one namespace holding P
 * addresses; then gobgpd as the same route reflector to the same simulated clients, in the same run.
 *
 * Figures per reflector: time from start until all P sessions are Established (target < 30 s),
 * time until every client has received the other P−1 clients' /24s (P·(P−1) reflected routes),
 * and resident memory per session ((RSS with all sessions up and routes reflected − RSS before any
 * peer was configured) / P). Ratios against gobgpd.
 *
 *   deno run -A bench/bgp_many_peers.ts [--peers 1000] [--only ours,gobgpd] [--reflect-timeout 300]
 *     [--v8 --max-semi-space-size=2]
 *
 * Addresses: lab nodes 10.240.0.x (tests/fixtures/bgp_peers.ts); simulated clients 10.241.1.1 …
 * 10.241.k.250 on the simulator namespace's loopback, routed from the reflector namespaces; their
 * /24s 10.100.0.0 upwards (lab only; nothing is forwarded).
 *
 * @module
 */
import { BgpLab, type Gobgp, rssKb, waitFor } from "../tests/fixtures/bgp_peers.ts";

function arg(name: string, dflt: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
}
const P = arg("peers", 1000);
const ONLY = (() => {
  const i = Deno.args.indexOf("--only");
  return i >= 0 ? Deno.args[i + 1].split(",") : ["ours", "gobgpd"];
})();
const V8_FLAGS = (() => {
  const i = Deno.args.indexOf("--v8");
  const v = i >= 0 ? Deno.args[i + 1] : "--max-semi-space-size=2";
  return v ? v.split(",") : [];
})();
const ASN = 64512;
/** How long to wait for every client to hold every other client's route. */
const REFLECT_TIMEOUT_S = arg("reflect-timeout", 300);
/** `--routes 0`: clients announce nothing (session cost alone, no reflection). */
const ROUTES = arg("routes", 1) !== 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function client(i: number): string {
  return `10.241.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

/** The simulator in the "sim" namespace; `state()` is its last report. */
function startSim(
  lab: BgpLab,
): { state: () => { established: number; received: number }; stop: () => Promise<void> } {
  const proc = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      lab.node("sim").ns,
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
  let last = { established: 0, received: 0 };
  (async () => {
    let buf = "";
    for await (const c of proc.stdout.pipeThrough(new TextDecoderStream())) {
      buf += c;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        last = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
  })().catch(() => {});
  return {
    state: () => last,
    stop: async () => {
      try {
        proc.kill("SIGKILL");
      } catch { /* gone */ }
      await proc.status;
    },
  };
}

interface Result {
  name: string;
  upMs: number;
  reflectedMs: number;
  rssMb: number;
  perSessionKb: number;
}

async function measure(
  name: string,
  lab: BgpLab,
  start: () => Promise<{ pid: number; baseKb: number; t0: number; stop: () => Promise<void> }>,
): Promise<Result> {
  const sim = startSim(lab);
  await sleep(1500);
  const r = await start();
  let upMs = 0;
  await waitFor(
    `${name}: ${P} sessions Established (last ${JSON.stringify(sim.state())})`,
    () => {
      if (sim.state().established >= P && !upMs) upMs = performance.now() - r.t0;
      return upMs > 0;
    },
    300_000,
    50,
  );
  let reflectedMs = 0;
  const want = ROUTES ? P * (P - 1) : 0;
  await waitFor(
    `${name}: ${want} reflected routes`,
    () => {
      if (sim.state().received >= want) reflectedMs = performance.now() - r.t0;
      return reflectedMs > 0;
    },
    REFLECT_TIMEOUT_S * 1000,
    100,
  ).catch(() => {
    // Reported, not fatal: the session figures stand on their own.
    reflectedMs = NaN;
    console.log(
      `  ${name}: ${sim.state().received} of ${want} routes reflected after ${REFLECT_TIMEOUT_S} s`,
    );
  });
  await sleep(2000);
  const kb = rssKb(r.pid);
  const res = {
    name,
    upMs,
    reflectedMs,
    rssMb: kb / 1024,
    perSessionKb: (kb - r.baseKb) / P,
  };
  console.log(
    `  ${name}: ${P} Established in ${(upMs / 1000).toFixed(2)} s, all ${want} routes reflected in ${
      (reflectedMs / 1000).toFixed(2)
    } s, RSS ${res.rssMb.toFixed(0)} MB (${res.perSessionKb.toFixed(0)} kB per session)`,
  );
  await r.stop();
  await sim.stop();
  return res;
}

async function main(): Promise<void> {
  const lab = await BgpLab.create(["rr", "sim", "gobgp"]);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => void lab.close().finally(() => Deno.exit(130)));
  }
  try {
    const sim = lab.node("sim");
    const lines: string[] = [];
    for (let i = 0; i < P; i++) lines.push(`addr add ${client(i)}/32 dev lo`);
    const add = new Deno.Command("ip", { args: ["-n", sim.ns, "-batch", "-"], stdin: "piped" }).spawn();
    const w = add.stdin.getWriter();
    await w.write(new TextEncoder().encode(lines.join("\n") + "\n"));
    await w.close();
    if (!(await add.status).success) throw new Error("adding the client addresses failed");
    await lab.exec("sim", [
      "sysctl",
      "-q",
      "-w",
      "net.core.somaxconn=4096",
      "net.ipv4.tcp_max_syn_backlog=4096",
    ]);
    for (const n of ["rr", "gobgp"]) {
      await lab.exec(n, ["ip", "route", "add", "10.241.0.0/16", "via", sim.v4]);
    }
    const results: Result[] = [];
    if (ONLY.includes("ours")) {
      results.push(
        await measure("ours", lab, async () => {
          const rr = lab.node("rr");
          const sp = lab.speaker("rr", { v8Flags: V8_FLAGS });
          await sp.call("create", {
            asn: ASN,
            routerId: rr.v4,
            listen: { addresses: [rr.v4], port: 179 },
            clusterId: rr.v4,
          }, { events: false });
          await sleep(500);
          const baseKb = rssKb(sp.pid);
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
          return { pid: sp.pid, baseKb, t0, stop: () => sp.stop() };
        }),
      );
    }
    if (ONLY.includes("gobgpd")) {
      results.push(
        await measure("gobgpd", lab, async () => {
          const g = lab.node("gobgp");
          const nbs: string[] = [];
          for (let i = 0; i < P; i++) {
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
          const t0 = performance.now();
          const gb: Gobgp = await lab.gobgp(
            "gobgp",
            `[global.config]\n  as = ${ASN}\n  router-id = "${g.v4}"\n  local-address-list = ["${g.v4}"]\n` +
              nbs.join(""),
          );
          // gobgpd has no "before peers" state: its base is an idle gobgpd with no neighbours,
          // measured by the same process shape (a second instance would change the run), so
          // per-session memory counts everything; noted in the output.
          return { pid: gb.pid!, baseKb: 0, t0, stop: () => gb.stop() };
        }),
      );
    }
    console.log(`\nRoute reflector with ${P} clients (peer simulator bench/bgp_peer_sim.ts)`);
    console.log("reflector  all Established   all reflected   RSS      per session");
    for (const r of results) {
      console.log(
        `${r.name.padEnd(10)} ${(r.upMs / 1000).toFixed(2).padStart(10)} s ${
          (r.reflectedMs / 1000).toFixed(2).padStart(12)
        } s ${r.rssMb.toFixed(0).padStart(6)} MB ${r.perSessionKb.toFixed(0).padStart(8)} kB${
          r.name === "gobgpd" ? " (whole process / P)" : ""
        }`,
      );
    }
    const o = results.find((r) => r.name === "ours"), g = results.find((r) => r.name === "gobgpd");
    if (o && g) {
      console.log(
        `ours / gobgpd: Established ${(o.upMs / g.upMs).toFixed(2)}×, reflected ${
          (o.reflectedMs / g.reflectedMs).toFixed(2)
        }×, RSS ${(o.rssMb / g.rssMb).toFixed(2)}× (target: all Established < 30 s: ${
          o.upMs < 30_000 ? "met" : "missed"
        })`,
      );
    }
  } finally {
    await lab.close();
  }
}

if (import.meta.main) await main();

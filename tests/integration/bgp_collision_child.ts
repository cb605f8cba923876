/**
 * Runs inside a throwaway network namespace (started by `bgp_collision_test.ts` through
 * `ip netns exec`): two `BgpSpeaker`s in this one process, A on 127.0.0.1 and B on 127.0.0.2
 * (both on the namespace's loopback), each configured with the other as an eBGP peer with a 1 s
 * connect retry, started in the same event-loop turn so they dial each other at the same moment
 * (a connection collision, RFC 4271 §6.8) — `iterations` times, with a small random skew
 * (0–`skewMs` ms) between the two starts to explore the interleavings. Prints one JSON line:
 * per iteration, the time until both sides were Established and what each side logged.
 *
 * Usage: bgp_collision_child.ts <iterations> <skewMs> <basePort> [aLowerId=1]
 *
 * With `--side A|B --start-at <epoch ms> --period <ms>` it runs one side only (A keeps the lower
 * router ID), so the two speakers are two processes with their own event loops, as two nodes
 * are: iteration i adds the peer at start-at + i × period (B after the same pseudo-random skew
 * of 0–`skewMs` ms), waits for its own side Established, and stops its speaker 300 ms before the
 * next period. Prints one JSON line: per iteration, this side's time to Established.
 *
 * @module
 */
import { BgpSpeaker } from "../../bgp/mod.ts";

const iterations = Number(Deno.args[0] ?? 30);
const skewMs = Number(Deno.args[1] ?? 0);
const basePort = Number(Deno.args[2] ?? 20179);
// Which side has the lower router ID alternates too (1 = A lower, 0 = B lower).
const idOrder = Deno.args[3] ?? "alternate";

interface Result {
  i: number;
  ms: number;
  ok: boolean;
  states: string[];
  notes: string[];
}

async function once(i: number): Promise<Result> {
  const port = basePort + i;
  const aLower = idOrder === "alternate" ? i % 2 === 0 : idOrder === "1";
  const notes: string[] = [];
  const mk = (name: string, addr: string, id: string, asn: number) =>
    new BgpSpeaker({
      asn,
      routerId: id,
      listen: { addresses: [addr], port },
      log: (level, msg, fields) => {
        if (level !== "debug" || msg === "bgp peer state") {
          notes.push(`${name} ${msg} ${JSON.stringify(fields ?? {})}`);
        }
      },
    });
  const a = mk("A", "127.0.0.1", aLower ? "192.0.2.1" : "192.0.2.2", 65001);
  const b = mk("B", "127.0.0.2", aLower ? "192.0.2.2" : "192.0.2.1", 65002);
  await a.start();
  await b.start();
  const t0 = performance.now();
  const common = { port, holdTime: 90, connectRetry: 1 };
  const skew = Math.floor(Math.random() * (skewMs + 1));
  const addB = () => b.addPeer({ address: "127.0.0.1", asn: 65001, localAddress: "127.0.0.2", ...common });
  a.addPeer({ address: "127.0.0.2", asn: 65002, localAddress: "127.0.0.1", ...common });
  if (skew === 0) addB();
  else setTimeout(addB, skew);
  let ok = false;
  while (performance.now() - t0 < 15_000) {
    const pa = a.peers()[0]?.state, pb = b.peers()[0]?.state;
    if (pa === "Established" && pb === "Established") {
      ok = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const ms = Math.round(performance.now() - t0);
  const states = [a.peers()[0]?.state ?? "-", b.peers()[0]?.state ?? "-"];
  await a.stop();
  await b.stop();
  return { i, ms, ok, states, notes: ok && ms < 500 ? [] : notes };
}

/** One side of iteration `i`, in step with the other process by the wall clock. */
async function side(i: number, who: "A" | "B", startAt: number, period: number): Promise<Result> {
  const port = basePort + i;
  const notes: string[] = [];
  let t0 = performance.now();
  const [addr, peer, id, asn, peerAsn] = who === "A"
    ? ["127.0.0.1", "127.0.0.2", "192.0.2.1", 65001, 65002]
    : ["127.0.0.2", "127.0.0.1", "192.0.2.2", 65002, 65001];
  const sp = new BgpSpeaker({
    asn,
    routerId: id,
    listen: { addresses: [addr], port },
    log: (level, msg, fields) => {
      if (level !== "debug" || msg === "bgp peer state" || msg === "bgp connection collision") {
        notes.push(`${who} ${Math.round(performance.now() - t0)} ms ${msg} ${JSON.stringify(fields ?? {})}`);
      }
    },
  });
  await sp.start();
  // The same skew in both processes: a hash of the iteration.
  const skew = who === "B" ? ((i * 2654435761) >>> 0) % (skewMs + 1) : 0;
  const at = startAt + i * period + skew;
  await new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
  t0 = performance.now();
  sp.addPeer({ address: peer, asn: peerAsn, localAddress: addr, port, holdTime: 90, connectRetry: 1 });
  let ok = false;
  const end = startAt + (i + 1) * period - 300;
  while (Date.now() < end) {
    if (sp.peers()[0]?.state === "Established") {
      ok = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const ms = Math.round(performance.now() - t0);
  const states = [sp.peers()[0]?.state ?? "-"];
  await new Promise((r) => setTimeout(r, Math.max(0, end - Date.now())));
  await sp.stop();
  return { i, ms, ok, states, notes: ok && ms < 300 ? [] : notes };
}

const flag = (name: string) => {
  const k = Deno.args.indexOf(`--${name}`);
  return k >= 0 ? Deno.args[k + 1] : undefined;
};
const results: Result[] = [];
const who = flag("side");
for (let i = 0; i < iterations; i++) {
  results.push(
    who === "A" || who === "B"
      ? await side(i, who, Number(flag("start-at")), Number(flag("period")))
      : await once(i),
  );
}
console.log(JSON.stringify(results));

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

const results: Result[] = [];
for (let i = 0; i < iterations; i++) results.push(await once(i));
console.log(JSON.stringify(results));

// Fault tests: a raw TCP "peer" (bgp_fault_peer.ts, in namespace "f") misbehaves against our
// speaker (namespace "us") while our session to BIRD (namespace "bird") must stay Established.
//
// Addresses (see tests/fixtures/bgp_peers.ts): us 10.240.0.1, bird 10.240.0.2, f 10.240.0.3.
// Our AS 65001, BIRD AS 65002, the fault peer AS 65010 (configured passive on our side).
// Prefixes: BIRD 198.51.100.0/24; fault peer 10.244.x.0/24 and 10.100+.x.y/32 (flood).

import assert from "node:assert/strict";
import { BgpLab, type SpeakerProc, waitFor } from "../fixtures/bgp_peers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

interface FaultEvent {
  event: string;
  code?: number;
  subcode?: number;
  at?: number;
  [k: string]: unknown;
}

/** Run the fault peer in `f` and collect its events until it exits or `stopAfter` matches. */
class FaultPeer {
  events: FaultEvent[] = [];
  #proc: Deno.ChildProcess;
  done: Promise<void>;
  constructor(lab: BgpLab, mode: string, target: string, arg?: string) {
    const script = new URL("./bgp_fault_peer.ts", import.meta.url).pathname;
    const proc = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        lab.node("f").ns,
        Deno.execPath(),
        "run",
        "-A",
        script,
        mode,
        target,
        "179",
        ...(arg ? [arg] : []),
      ],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    this.#proc = proc;
    this.done = (async () => {
      let buf = "";
      for await (const c of proc.stdout.pipeThrough(new TextDecoderStream())) {
        buf += c;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            this.events.push(JSON.parse(line));
          } catch { /* not ours */ }
        }
      }
      await proc.stderr.cancel().catch(() => {});
      await proc.status;
    })();
  }
  has(e: string): FaultEvent | undefined {
    return this.events.find((x) => x.event === e);
  }
  async kill(): Promise<void> {
    try {
      this.#proc.kill("SIGKILL");
    } catch { /* exited */ }
    await this.done;
  }
}

async function birdUptime(sp: SpeakerProc, addr: string): Promise<number> {
  const p = (await sp.call<Array<{ address: string; state: string; uptimeMs: number }>>("peers")).find((x) =>
    x.address === addr
  )!;
  assert.equal(p.state, "Established", "the BIRD session must stay Established");
  return p.uptimeMs;
}

Deno.test({
  name:
    "bgp fault: garbage, bad length, mid-message close, hold timer expiry, bad ORIGIN and a flood; BIRD session unaffected",
  ...opts,
  fn: async () => {
    const lab = await BgpLab.create(["us", "bird", "f"]);
    const sp = lab.speaker("us");
    const us = lab.node("us"), b = lab.node("bird"), f = lab.node("f");
    try {
      const bird = await lab.bird(
        "bird",
        `router id ${b.v4};
protocol device {}
protocol static s4 { ipv4; route 198.51.100.0/24 blackhole; }
protocol bgp ours {
  local ${b.v4} as 65002; neighbor ${us.v4} as 65001; hold time 9; connect retry time 1;
  ipv4 { import all; export all; };
}
`,
      );
      await sp.call("create", { asn: 65001, routerId: us.v4, listen: { addresses: [us.v4], port: 179 } });
      await sp.call("addPeer", { address: b.v4, asn: 65002, connectRetry: 1 });
      await sp.call("addPeer", { address: f.v4, asn: 65010, passive: true, connectRetry: 1, holdTime: 90 });
      await sp.call("start");
      await sp.call("originate", "10.241.9.0/24", {});
      await waitFor("BIRD Established", async () => (await sp.peerState(b.v4)) === "Established");
      const t0 = performance.now();
      const up0 = await birdUptime(sp, b.v4);

      // 1. Garbage: Message Header Error / Connection Not Synchronized (RFC 4271 §6.1), then close.
      {
        const fp = new FaultPeer(lab, "garbage", us.v4);
        await waitFor("garbage peer closed", () => fp.has("closed"), 10_000);
        const n = fp.has("notification");
        assert.deepEqual([n?.code, n?.subcode], [1, 1]);
        await fp.kill();
      }
      // 2. Header length 5000 > 4096: Message Header Error / Bad Message Length.
      {
        const fp = new FaultPeer(lab, "badlength", us.v4);
        await waitFor("badlength peer closed", () => fp.has("closed"), 10_000);
        const n = fp.has("notification");
        assert.deepEqual([n?.code, n?.subcode], [1, 2]);
        await fp.kill();
      }
      // 3. Established, half an UPDATE, close: the session goes down, nothing is installed.
      {
        const fp = new FaultPeer(lab, "midclose", us.v4);
        await waitFor("midclose peer done", () => fp.has("we-closed"), 10_000);
        await waitFor("our session to f is down", async () => (await sp.peerState(f.v4)) !== "Established");
        assert.equal(await sp.call("bestRoute", "10.244.1.0/24"), null);
        await fp.kill();
      }
      // 4. Hold time 3 negotiated, then silence: NOTIFICATION 4 (Hold Timer Expired) after ~3 s.
      {
        const fp = new FaultPeer(lab, "silent", us.v4);
        await waitFor("silent peer Established", () => fp.has("established"), 10_000);
        const est = fp.has("established")!;
        void est;
        await waitFor("hold timer expiry", () => fp.has("notification"), 10_000);
        const n = fp.has("notification")!;
        assert.deepEqual([n.code, n.subcode], [4, 0]);
        await waitFor("silent peer closed", () => fp.has("closed"), 5_000);
        await fp.kill();
      }
      // 5. Bad ORIGIN value: treat-as-withdraw (RFC 7606 §7.1), the session stays up.
      {
        const fp = new FaultPeer(lab, "badorigin", us.v4);
        await waitFor("badorigin peer sent", () => fp.has("sent-bad-origin"), 10_000);
        await waitFor("route withdrawn by treat-as-withdraw", async () => {
          const st = await sp.peerState(f.v4);
          return st === "Established" && (await sp.call("bestRoute", "10.244.2.0/24")) === null;
        });
        assert.equal(fp.has("notification"), undefined, "no NOTIFICATION for a treat-as-withdraw error");
        const st = (await sp.call<Array<{ address: string; updateErrors: number }>>("peers")).find((p) =>
          p.address === f.v4
        )!;
        assert.ok(st.updateErrors >= 1, "the malformed UPDATE is counted");
        await fp.kill();
        await waitFor(
          "session to f down after kill",
          async () => (await sp.peerState(f.v4)) !== "Established",
        );
      }
      // 6. Flood of 200,000 prefixes: all accepted, BIRD unaffected, then all gone when it dies.
      {
        const fp = new FaultPeer(lab, "flood", us.v4, "200000");
        await waitFor("flood sent", () => fp.has("flood-sent"), 60_000);
        await waitFor(
          "all flooded prefixes in Loc-RIB",
          async () => (await sp.call("locRibSize")) >= 200_002,
          60_000,
        );
        assert.equal(await sp.peerState(f.v4), "Established");
        await birdUptime(sp, b.v4);
        assert.ok(await bird.route("10.241.9.0/24"));
        await fp.kill();
        await waitFor(
          "flooded prefixes withdrawn on close",
          async () => (await sp.call("locRibSize")) <= 2,
          60_000,
        );
      }
      // The BIRD session never reset: its uptime covers the whole test.
      const up1 = await birdUptime(sp, b.v4);
      assert.ok(
        up1 - up0 >= performance.now() - t0 - 1000,
        `BIRD uptime ${up0} → ${up1} over ${performance.now() - t0} ms`,
      );
      assert.match(await bird.protoState("ours"), /Established/);
    } catch (err) {
      const ours = await sp.call("logs").catch(() => []);
      throw new Error(`${err}\n--- our speaker:\n${(ours as string[]).slice(-30).join("\n")}`, {
        cause: err,
      });
    } finally {
      await sp.stop();
      await lab.close();
    }
  },
});

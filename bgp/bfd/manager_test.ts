/**
 * Two BfdManagers over loopback in the test's own namespace: 127.0.0.1 ⇄ 127.0.0.2 on a test
 * port (not 3784, so nothing else on the machine is touched). Loopback delivers TTL 255
 * untouched, so the GTSM check runs for real. The namespace tests (bgp_bfd_*) cut real links.
 */
import assert from "node:assert/strict";
import { BfdManager, encodeControl, resolveTiming, State } from "./mod.ts";
import { UdpSocket } from "../transport/udp.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await wait(10);
  }
}

Deno.test("bfd manager: options are validated all at once", () => {
  assert.throws(
    () => resolveTiming({ desiredMinTxMs: 0, detectMultiplier: 0 }),
    /desiredMinTx is 0 µs.*detectMultiplier is 0; accepted: 1–255/,
  );
  assert.deepEqual(resolveTiming({}), {
    desiredMinTxUs: 1_000_000,
    requiredMinRxUs: 1_000_000,
    detectMult: 3,
  });
});

Deno.test(
  "bfd manager: two managers on loopback come Up, and Down when one side goes away",
  OPTS,
  async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const a = new BfdManager();
    const b = new BfdManager();
    const events: string[] = [];
    try {
      a.onUp((p) => events.push(`up ${p}`));
      a.onDown((p, diag) => events.push(`down ${p} ${diag}`));
      const opts = { port, desiredMinTxMs: 50, requiredMinRxMs: 50, detectMultiplier: 3 };
      a.add("127.0.0.2", { ...opts, localAddress: "127.0.0.1" });
      b.add("127.0.0.1", { ...opts, localAddress: "127.0.0.2" });
      await until("both Up", () => a.state("127.0.0.2") === "Up" && b.state("127.0.0.1") === "Up");
      assert.deepEqual(events, ["up 127.0.0.2"]);
      // Up first runs at the slow rate (RFC 5880 §6.8.3); the Poll Sequence to 50 ms follows, and
      // on a loaded machine it may not have ended when both report Up.
      await until("fast timers", () => a.sessions()[0].detectionTimeMs === 150);
      const s = a.sessions()[0];
      assert.ok(s.packetsIn > 0 && s.ttlDrops === 0);
      const t0 = performance.now();
      b.close(); // sends AdminDown → A goes Down with diag 3 at once
      await until("A Down", () => a.state("127.0.0.2") === "Down");
      assert.ok(performance.now() - t0 < 100);
      assert.deepEqual(events, ["up 127.0.0.2", "down 127.0.0.2 3"]);
    } finally {
      a.close();
      b.close();
    }
  },
);

Deno.test("bfd manager: timing change while Up (Poll Sequence) and the TTL-255 check", OPTS, async () => {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const a = new BfdManager();
  const b = new BfdManager();
  const spoof = UdpSocket.bind({ hostname: "127.0.0.3", port: 0, ttl: 64 });
  try {
    const opts = { port, desiredMinTxMs: 50, requiredMinRxMs: 50, detectMultiplier: 3 };
    a.add("127.0.0.2", { ...opts, localAddress: "127.0.0.1" });
    b.add("127.0.0.1", { ...opts, localAddress: "127.0.0.2" });
    await until("both Up", () => a.state("127.0.0.2") === "Up" && b.state("127.0.0.1") === "Up");
    // A slows down to 200 ms: B's detection time follows once the poll completes; both stay Up.
    const downs: string[] = [];
    a.onDown((p) => downs.push(p));
    b.onDown((p) => downs.push(p));
    a.add("127.0.0.2", { ...opts, desiredMinTxMs: 200, localAddress: "127.0.0.1" });
    await until("B's detection time is 3 × 200 ms", () => b.sessions()[0].detectionTimeMs === 600);
    await wait(500);
    assert.deepEqual(downs, []);
    assert.equal(a.state("127.0.0.2"), "Up");

    // A packet that claims to be for A's session but arrives with TTL 64 is dropped (GTSM).
    const s = a.sessions()[0];
    const bogus = encodeControl({
      diag: 0,
      state: State.AdminDown,
      poll: false,
      final: false,
      cpi: false,
      auth: false,
      demand: false,
      multipoint: false,
      detectMult: 3,
      myDiscr: s.remoteDiscr,
      yourDiscr: s.localDiscr,
      desiredMinTxUs: 1_000_000,
      requiredMinRxUs: 1_000_000,
      requiredMinEchoRxUs: 0,
    });
    // Sent from 127.0.0.3: also not the peer's address, so it is dropped before the TTL check;
    // the TTL path is covered by sending from the peer's own address below.
    spoof.sendTo(bogus, "127.0.0.1", port);
    const spoofFromPeer = UdpSocket.bind({ hostname: "127.0.0.2", port: 0, ttl: 64 });
    try {
      spoofFromPeer.sendTo(bogus, "127.0.0.1", port);
      await until("TTL drop counted", () => a.sessions()[0].ttlDrops === 1);
    } finally {
      spoofFromPeer.close();
    }
    await wait(100);
    assert.equal(a.state("127.0.0.2"), "Up", "the AdminDown with TTL 64 was ignored");
  } finally {
    spoof.close();
    a.close();
    b.close();
  }
});

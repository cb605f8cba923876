import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type BfdAction,
  type BfdSession,
  type BfdTiming,
  detectionTimeUs,
  jitter,
  newSession,
  nextDeadline,
  SLOW_TX_US,
  step,
} from "./fsm.ts";
import { type ControlPacket, Diag, State } from "./packet.ts";

const FAST: BfdTiming = { desiredMinTxUs: 100_000, requiredMinRxUs: 100_000, detectMult: 3 };

/** Two sessions joined by a fake wire with 1 ms latency, driven by a fake clock. */
class Sim {
  now = 0;
  s: [BfdSession, BfdSession];
  wire: Array<{ at: number; to: 0 | 1; packet: ControlPacket }> = [];
  sent: Array<{ at: number; from: 0 | 1; packet: ControlPacket }> = [];
  states: Array<{ at: number; who: 0 | 1; a: BfdAction & { kind: "state" } }> = [];
  linkUp = true;
  #seed = 1;
  random = () => {
    this.#seed = (this.#seed * 16807) % 2147483647;
    return this.#seed / 2147483647;
  };

  constructor(ta: BfdTiming = FAST, tb: BfdTiming = FAST) {
    this.s = [newSession(ta, 0x1111, 0), newSession(tb, 0x2222, 0)];
  }

  #apply(who: 0 | 1, r: { session: BfdSession; actions: BfdAction[] }) {
    this.s[who] = r.session;
    for (const a of r.actions) {
      if (a.kind === "send") {
        this.sent.push({ at: this.now, from: who, packet: a.packet });
        if (this.linkUp) this.wire.push({ at: this.now + 1, to: who === 0 ? 1 : 0, packet: a.packet });
      } else this.states.push({ at: this.now, who, a });
    }
  }

  /** Runs until `until` ms. */
  run(until: number) {
    for (;;) {
      const d = Math.min(nextDeadline(this.s[0]), nextDeadline(this.s[1]), ...this.wire.map((w) => w.at));
      if (d > until) {
        this.now = until;
        return;
      }
      this.now = Math.max(this.now, d);
      const due = this.wire.filter((w) => w.at <= this.now);
      this.wire = this.wire.filter((w) => w.at > this.now);
      for (const w of due) {
        this.#apply(w.to, step(this.s[w.to], { kind: "rx", packet: w.packet }, this.now, this.random));
      }
      for (const who of [0, 1] as const) {
        if (nextDeadline(this.s[who]) <= this.now) {
          this.#apply(who, step(this.s[who], { kind: "timer" }, this.now, this.random));
        }
      }
    }
  }
}

Deno.test("bfd fsm: two sessions come Up through Init, then run the Poll Sequence to the fast rate", () => {
  const sim = new Sim();
  sim.run(50);
  assert.equal(sim.s[0].state, State.Up);
  assert.equal(sim.s[1].state, State.Up);
  const seqA = sim.states.filter((x) => x.who === 0).map((x) => x.a.to);
  assert.ok(seqA.join() === [State.Init, State.Up].join() || seqA.join() === [State.Up].join(), seqA.join());
  // While not Up the advertised interval was the 1 s floor.
  assert.ok(
    sim.sent.filter((x) => x.packet.state !== State.Up).every((x) => x.packet.desiredMinTxUs === SLOW_TX_US),
  );
  sim.run(3000);
  assert.equal(sim.s[0].pollActive, false, "poll answered with Final");
  assert.equal(sim.s[0].txInUseUs, 100_000);
  assert.ok(sim.sent.some((x) => x.packet.poll) && sim.sent.some((x) => x.packet.final));
  assert.ok(!sim.sent.some((x) => x.packet.poll && x.packet.final), "never P and F together");
  // Periodic packets of A in the steady state are 75–100% of 100 ms apart.
  const times = sim.sent.filter((x) => x.from === 0 && x.at > 1000 && !x.packet.final).map((x) => x.at);
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  assert.ok(gaps.length > 15);
  for (const g of gaps) assert.ok(g >= 75 - 1e-9 && g <= 100 + 1e-9, `gap ${g}`);
  assert.equal(detectionTimeUs(sim.s[0]), 300_000);
});

Deno.test("bfd fsm: a cut link is detected Down (diag 1) within the detection time", () => {
  const sim = new Sim();
  sim.run(3000);
  assert.equal(sim.s[0].state, State.Up);
  const cut = sim.now;
  sim.linkUp = false;
  sim.wire = [];
  sim.run(cut + 1000);
  const down = sim.states.find((x) => x.who === 0 && x.a.to === State.Down)!;
  assert.ok(down, "A went down");
  assert.equal(down.a.diag, Diag.ControlDetectionTimeExpired);
  assert.ok(down.at - cut <= 300, `detected after ${down.at - cut} ms (detect time 300 ms)`);
  assert.ok(down.at - cut >= 300 - 100, "not before the last packet's detection time ran out");
  // Back to the slow rate while Down.
  assert.equal(sim.s[0].advertisedTxUs, SLOW_TX_US);
  assert.equal(sim.s[0].remoteDiscr, 0);
  // Link restored: Up again.
  sim.linkUp = true;
  sim.run(sim.now + 3000);
  assert.equal(sim.s[0].state, State.Up);
  assert.equal(sim.s[1].state, State.Up);
});

Deno.test("bfd fsm: detection time uses the remote multiplier and the slower of our RX and its TX", () => {
  const sim = new Sim(FAST, { desiredMinTxUs: 250_000, requiredMinRxUs: 50_000, detectMult: 5 });
  sim.run(5000);
  assert.equal(sim.s[0].state, State.Up);
  assert.equal(detectionTimeUs(sim.s[0]), 5 * 250_000);
  assert.equal(detectionTimeUs(sim.s[1]), 3 * 100_000);
  // A sends no faster than B accepts? B accepts 50 ms, A wants 100 ms: A uses 100 ms.
  const a = sim.sent.filter((x) => x.from === 0 && x.at > 4000 && !x.packet.final).map((x) => x.at);
  for (let i = 1; i < a.length; i++) assert.ok(a[i] - a[i - 1] >= 75 - 1e-9);
});

Deno.test("bfd fsm: peer AdminDown → Down with diag 3; our admin-down sends AdminDown, admin-up recovers", () => {
  const sim = new Sim();
  sim.run(3000);
  sim.s[1] = (() => {
    const r = step(sim.s[1], { kind: "admin-down" }, sim.now);
    assert.equal(r.actions[1].kind, "send");
    assert.equal((r.actions[1] as { packet: ControlPacket }).packet.state, State.AdminDown);
    sim.wire.push({ at: sim.now + 1, to: 0, packet: (r.actions[1] as { packet: ControlPacket }).packet });
    return r.session;
  })();
  sim.run(sim.now + 10);
  const down = sim.states.find((x) => x.who === 0 && x.a.to === State.Down)!;
  assert.equal(down.a.diag, Diag.NeighborSignaledSessionDown);
  assert.equal(sim.s[0].detectAt, null, "no detection against an AdminDown peer");
  sim.run(sim.now + 5000);
  assert.equal(sim.s[0].state, State.Down, "stays Down while the peer is AdminDown");
  sim.s[1] = step(sim.s[1], { kind: "admin-up" }, sim.now).session;
  sim.run(sim.now + 5000);
  assert.equal(sim.s[0].state, State.Up);
});

Deno.test("bfd fsm: a Poll is answered at once with Final, and Final ends our own poll", () => {
  let s = newSession(FAST, 5, 0);
  const peer = (over: Partial<ControlPacket>): ControlPacket => ({
    version: 1,
    diag: 0,
    state: State.Down,
    poll: false,
    final: false,
    cpi: false,
    auth: false,
    demand: false,
    multipoint: false,
    detectMult: 3,
    myDiscr: 9,
    yourDiscr: 5,
    desiredMinTxUs: SLOW_TX_US,
    requiredMinRxUs: 100_000,
    requiredMinEchoRxUs: 0,
    ...over,
  });
  s = step(s, { kind: "rx", packet: peer({ state: State.Init }) }, 10).session;
  assert.equal(s.state, State.Up);
  assert.ok(s.pollActive, "DesiredMinTx changed when going Up: poll");
  const r = step(s, { kind: "rx", packet: peer({ state: State.Up, poll: true }) }, 20);
  const sends = r.actions.filter((a) => a.kind === "send");
  assert.equal(sends.length, 1);
  assert.ok(sends[0].kind === "send" && sends[0].packet.final && !sends[0].packet.poll);
  const r2 = step(r.session, { kind: "rx", packet: peer({ state: State.Up, final: true }) }, 30);
  assert.equal(r2.session.pollActive, false);
  // Increasing DesiredMinTx while Up keeps the old pacing until the poll ends.
  const r3 = step(r2.session, { kind: "configure", timing: { ...FAST, desiredMinTxUs: 500_000 } }, 40);
  assert.equal(r3.session.txInUseUs, 100_000);
  assert.equal(r3.session.advertisedTxUs, 500_000);
  assert.ok(r3.session.pollActive);
  const r4 = step(r3.session, { kind: "rx", packet: peer({ state: State.Up, final: true }) }, 50);
  assert.equal(r4.session.txInUseUs, 500_000);
});

Deno.test("bfd fsm: an AdminDown session ignores packets; the machine never throws", () => {
  const s = step(newSession(FAST, 1, 0), { kind: "admin-down" }, 0).session;
  fc.assert(fc.property(
    fc.record({
      state: fc.constantFrom(State.AdminDown, State.Down, State.Init, State.Up),
      poll: fc.boolean(),
      final: fc.boolean(),
      detectMult: fc.integer({ min: 1, max: 255 }),
      myDiscr: fc.integer({ min: 1, max: 0xffffffff }),
      desiredMinTxUs: fc.integer({ min: 0, max: 0xffffffff }),
      requiredMinRxUs: fc.integer({ min: 0, max: 0xffffffff }),
      now: fc.integer({ min: 0, max: 1e9 }),
    }),
    (f) => {
      const packet: ControlPacket = {
        version: 1,
        diag: 0,
        cpi: false,
        auth: false,
        demand: false,
        multipoint: false,
        yourDiscr: 1,
        requiredMinEchoRxUs: 0,
        ...f,
      };
      assert.equal(step(s, { kind: "rx", packet }, f.now).actions.length, 0);
      const live = step(newSession(FAST, 1, 0), { kind: "rx", packet }, f.now);
      step(live.session, { kind: "timer" }, f.now + 1e6);
    },
  ));
});

Deno.test("bfd fsm: jitter stays in 75–100% (75–90% when DetectMult is 1)", () => {
  fc.assert(fc.property(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (r) => {
    const j = jitter(1_000_000, 3, () => r);
    assert.ok(j > 750 - 1e-9 && j <= 1000);
    const j1 = jitter(1_000_000, 1, () => r);
    assert.ok(j1 > 750 - 1e-9 && j1 <= 900 + 1e-9);
  }));
});

// Unit tests of the pure FSM with a fake clock (milliseconds as plain numbers).
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  backoffMs,
  collisionSurvivor,
  dueEvents,
  type FsmEvent,
  type FsmPeer,
  ipv4ToInt,
  newPeer,
  nextDeadline,
  resolveCollision,
  step,
} from "./fsm.ts";

const cfg = { holdTime: 90, connectRetryTime: 5, maxBackoff: 60, passive: false };

function run(p: FsmPeer, events: FsmEvent[], now = 0) {
  const actions = [];
  for (const ev of events) {
    const r = step(p, ev, now);
    p = r.peer;
    actions.push(...r.actions.map((a) => a.type));
  }
  return { p, actions };
}

function established(now = 0): FsmPeer {
  return run(newPeer(cfg), [
    { type: "ManualStart" },
    { type: "TcpCrAcked" },
    { type: "BGPOpen", holdTime: 30 },
    { type: "KeepAliveMsg" },
  ], now).p;
}

Deno.test("fsm: active open reaches Established with negotiated hold and keepalive", () => {
  const { p, actions } = run(newPeer(cfg), [
    { type: "ManualStart" },
    { type: "TcpCrAcked" },
    { type: "BGPOpen", holdTime: 30 },
    { type: "KeepAliveMsg" },
  ], 1000);
  assert.equal(p.state, "Established");
  assert.deepEqual(actions, ["connect", "sendOpen", "sendKeepalive", "established"]);
  assert.equal(p.holdTime, 30);
  assert.equal(p.keepaliveTime, 10);
  assert.equal(p.holdAt, 1000 + 30_000);
  assert.equal(p.keepaliveAt, 1000 + 10_000);
  assert.equal(p.connectRetryAt, undefined);
});

Deno.test("fsm: hold time 0 means no keepalive and no hold timer", () => {
  const { p } = run(newPeer(cfg), [{ type: "ManualStart" }, { type: "TcpCrAcked" }, {
    type: "BGPOpen",
    holdTime: 0,
  }]);
  assert.equal(p.state, "OpenConfirm");
  assert.equal(p.holdTime, 0);
  assert.equal(p.holdAt, undefined);
  assert.equal(p.keepaliveAt, undefined);
  assert.equal(nextDeadline(p), undefined);
});

Deno.test("fsm: passive peer waits in Active and never dials", () => {
  const passive = newPeer({ ...cfg, passive: true });
  let { p, actions } = run(passive, [{ type: "ManualStart" }]);
  assert.equal(p.state, "Active");
  assert.deepEqual(actions, []);
  ({ p, actions } = run(p, [{ type: "ConnectRetryTimerExpires" }]));
  assert.equal(p.state, "Active");
  assert.deepEqual(actions, []);
  ({ p, actions } = run(p, [{ type: "TcpConnectionConfirmed" }]));
  assert.equal(p.state, "OpenSent");
  assert.deepEqual(actions, ["sendOpen"]);
});

Deno.test("fsm: hold timer expiry sends NOTIFICATION 4, goes Idle and schedules a restart", () => {
  const p0 = established(0);
  const due = dueEvents(p0, 30_000);
  assert.deepEqual(due.map((e) => e.type), ["HoldTimerExpires", "KeepaliveTimerExpires"]);
  const r = step(p0, due[0], 30_000);
  assert.equal(r.peer.state, "Idle");
  assert.deepEqual(r.actions, [
    { type: "sendNotification", notify: { code: 4, subcode: 0 } },
    { type: "down", reason: "hold timer expired", cause: { kind: "hold-timer-expired" }, routes: "drop" },
    { type: "close" },
  ]);
  assert.ok(r.peer.idleHoldAt !== undefined && r.peer.idleHoldAt > 30_000);
  const again = step(r.peer, { type: "AutomaticStart" }, r.peer.idleHoldAt!);
  assert.equal(again.peer.state, "Connect");
  assert.deepEqual(again.actions, [{ type: "connect" }]);
});

Deno.test("fsm: keepalive and update messages restart the hold timer", () => {
  const p0 = established(0);
  const p1 = step(p0, { type: "KeepAliveMsg" }, 20_000).peer;
  assert.equal(p1.holdAt, 50_000);
  const p2 = step(p1, { type: "UpdateMsg" }, 25_000).peer;
  assert.equal(p2.holdAt, 55_000);
  const k = step(p2, { type: "KeepaliveTimerExpires" }, 26_000);
  assert.deepEqual(k.actions, [{ type: "sendKeepalive" }]);
  assert.equal(k.peer.keepaliveAt, 36_000);
});

Deno.test("fsm: unexpected messages are FSM errors (NOTIFICATION 5)", () => {
  const { p } = run(newPeer(cfg), [{ type: "ManualStart" }, { type: "TcpCrAcked" }]);
  const r = step(p, { type: "UpdateMsg" }, 0);
  assert.equal(r.peer.state, "Idle");
  assert.deepEqual(r.actions[0], { type: "sendNotification", notify: { code: 5, subcode: 0 } });
  assert.equal(r.peer.connectRetryCounter, 1);
});

Deno.test("fsm: manual stop sends Cease and does not restart", () => {
  const r = step(established(), { type: "ManualStop" }, 5);
  assert.equal(r.peer.state, "Idle");
  assert.equal(r.peer.adminUp, false);
  assert.equal(r.peer.idleHoldAt, undefined);
  assert.deepEqual(r.actions.map((a) => a.type), ["sendNotification", "down", "close"]);
  assert.deepEqual(dueEvents(r.peer, 1e12), []);
});

Deno.test("fsm: received NOTIFICATION and TCP failure tear down Established", () => {
  for (
    const ev of [{ type: "NotifMsg", code: 6, subcode: 2 }, { type: "TcpConnectionFails" }] as FsmEvent[]
  ) {
    const r = step(established(), ev, 0);
    assert.equal(r.peer.state, "Idle");
    assert.deepEqual(r.actions.map((a) => a.type), ["down", "close"]);
  }
});

Deno.test("fsm: connect failure backs off exponentially with jitter, capped", () => {
  let p = newPeer(cfg);
  p = step(p, { type: "ManualStart" }, 0).peer;
  const waits: number[] = [];
  let now = 0;
  for (let i = 0; i < 8; i++) {
    p = step(p, { type: "TcpConnectionFails" }, now).peer;
    assert.equal(p.state, "Idle");
    waits.push(p.idleHoldAt! - now);
    now = p.idleHoldAt!;
    p = step(p, { type: "AutomaticStart" }, now).peer;
    assert.equal(p.state, "Connect");
  }
  for (let i = 0; i < waits.length; i++) {
    const nominal = Math.min(5000 * 2 ** i, 60_000);
    assert.ok(
      waits[i] >= nominal * 0.75 && waits[i] <= nominal,
      `wait ${i} = ${waits[i]}, nominal ${nominal}`,
    );
  }
  assert.ok(backoffMs(cfg, 50, 0xffffffff) <= 60_000);
});

Deno.test("fsm: collision dump sends Cease/7", () => {
  const { p } = run(newPeer(cfg), [{ type: "ManualStart" }, { type: "TcpCrAcked" }, {
    type: "BGPOpen",
    holdTime: 90,
  }]);
  const r = step(p, { type: "OpenCollisionDump" }, 0);
  assert.equal(r.peer.state, "Idle");
  assert.deepEqual(r.actions[0], { type: "sendNotification", notify: { code: 6, subcode: 7 } });
});

Deno.test("fsm: collision resolution compares router IDs as unsigned integers", () => {
  assert.equal(resolveCollision("10.0.0.1", "10.0.0.2"), "keep-remote-initiated");
  assert.equal(resolveCollision("200.0.0.1", "10.0.0.2"), "keep-local-initiated");
  assert.equal(resolveCollision("128.0.0.0", "127.255.255.255"), "keep-local-initiated");
});

Deno.test("fsm: OpenSent TCP failure returns to Active with connect retry running", () => {
  const { p } = run(newPeer(cfg), [{ type: "ManualStart" }, { type: "TcpCrAcked" }], 0);
  const r = step(p, { type: "TcpConnectionFails" }, 100);
  assert.equal(r.peer.state, "Active");
  assert.equal(r.peer.connectRetryAt, 5100);
  const r2 = step(r.peer, { type: "ConnectRetryTimerExpires" }, 5100);
  assert.equal(r2.peer.state, "Connect");
  assert.deepEqual(r2.actions, [{ type: "connect" }]);
});

Deno.test("fsm: collision survivor is the same physical connection on both sides (RFC 4271 §6.8)", () => {
  const id = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join("."));
  fc.assert(
    fc.property(id, id, fc.boolean(), fc.boolean(), (a, b, aHasOwnFirst, bHasOwnFirst) => {
      fc.pre(ipv4ToInt(a) !== ipv4ToInt(b));
      // Connections: X initiated by A, Y initiated by B. Each side has one of them first.
      const aExisting = aHasOwnFirst ? "X" : "Y", aCandidate = aHasOwnFirst ? "Y" : "X";
      const bExisting = bHasOwnFirst ? "Y" : "X", bCandidate = bHasOwnFirst ? "X" : "Y";
      const aKeeps = collisionSurvivor(a, b, aExisting === "X", aCandidate === "X") === "existing"
        ? aExisting
        : aCandidate;
      const bKeeps = collisionSurvivor(b, a, bExisting === "Y", bCandidate === "Y") === "existing"
        ? bExisting
        : bCandidate;
      assert.equal(aKeeps, bKeeps);
      // …and it is the one initiated by the higher identifier.
      assert.equal(aKeeps, ipv4ToInt(a) > ipv4ToInt(b) ? "X" : "Y");
    }),
  );
});

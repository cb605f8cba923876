// Unit tests of the FSM's graceful-restart (RFC 4724) and BFD (RFC 5882) inputs, with a fake clock:
// which causes of a session's end keep the peer's routes, the GR timers as deadlines, BFD via step.
import assert from "node:assert/strict";
import {
  type DownCause,
  dueEvents,
  type FsmAction,
  type FsmEvent,
  type FsmPeer,
  newPeer,
  nextDeadline,
  retainsRoutes,
  step,
} from "./fsm.ts";

const cfg = { holdTime: 90, connectRetryTime: 5, maxBackoff: 60, passive: false };

function run(p: FsmPeer, events: FsmEvent[], now = 0): { p: FsmPeer; actions: FsmAction[] } {
  const actions: FsmAction[] = [];
  for (const ev of events) {
    const r = step(p, ev, now);
    p = r.peer;
    actions.push(...r.actions);
  }
  return { p, actions };
}

/** Established with a peer whose GR restart time is `restartTime` s (undefined: no GR). */
function established(gr?: { restartTime?: number; deferralTime?: number }, now = 0): FsmPeer {
  return run(newPeer(cfg), [
    { type: "ManualStart" },
    { type: "TcpCrAcked" },
    { type: "BGPOpen", holdTime: 30, gr },
    { type: "KeepAliveMsg" },
  ], now).p;
}

function downOf(actions: FsmAction[]) {
  const d = actions.find((a) => a.type === "down");
  assert.ok(d && d.type === "down", `no down action in ${JSON.stringify(actions)}`);
  return d;
}

// Every way out of Established, the cause it must carry and whether GR keeps the routes
// (RFC 4724 §4.2; no N bit announced, so RFC 8538's NOTIFICATION case does not apply).
const exits: Array<{ ev: FsmEvent; kind: DownCause["kind"]; keeps: boolean }> = [
  {
    ev: { type: "TcpConnectionFails", reason: "connection closed by peer" },
    kind: "tcp-failed",
    keeps: true,
  },
  { ev: { type: "HoldTimerExpires" }, kind: "hold-timer-expired", keeps: true },
  { ev: { type: "BfdDown", reason: "BFD session down (diagnostic 1)" }, kind: "bfd-down", keeps: true },
  { ev: { type: "AutomaticStop", reason: "peer deconfigured" }, kind: "automatic-stop", keeps: true },
  { ev: { type: "ManualStop" }, kind: "admin-stop", keeps: false },
  { ev: { type: "NotifMsg", code: 6, subcode: 2 }, kind: "notification-received", keeps: false },
  {
    ev: { type: "UpdateMsgErr", notify: { code: 3, subcode: 1 } },
    kind: "notification-sent",
    keeps: false,
  },
  { ev: { type: "BGPHeaderErr", notify: { code: 1, subcode: 2 } }, kind: "notification-sent", keeps: false },
  { ev: { type: "BGPOpen", holdTime: 90 }, kind: "fsm-error", keeps: false },
  { ev: { type: "TcpConnectionConfirmed" }, kind: "fsm-error", keeps: false },
];

Deno.test("fsm gr: each cause of leaving Established keeps the routes stale or drops them", () => {
  for (const { ev, kind, keeps } of exits) {
    assert.equal(retainsRoutes(downOf(step(established(), ev, 0).actions).cause), keeps, kind);
    const r = step(established({ restartTime: 120 }), ev, 1000);
    const d = downOf(r.actions);
    assert.equal(d.cause.kind, kind, `${ev.type}`);
    assert.equal(d.routes, keeps ? "stale" : "drop", `${ev.type} → ${kind}`);
    assert.equal(r.peer.staleAt, keeps ? 1000 + 120_000 : undefined, `${ev.type}`);
    // Without GR negotiated nothing is ever kept.
    assert.equal(downOf(step(established(), ev, 0).actions).routes, "drop", `${ev.type} without GR`);
  }
});

Deno.test("fsm gr: the reason text is derived from the cause, the decision never from the text", () => {
  // An AutomaticStop whose free text mentions a NOTIFICATION still keeps the routes.
  const r = step(
    established({ restartTime: 60 }),
    { type: "AutomaticStop", reason: "NOTIFICATION later" },
    0,
  );
  assert.equal(downOf(r.actions).routes, "stale");
  assert.equal(r.peer.lastError, "NOTIFICATION later");
  const h = step(established(), { type: "HoldTimerExpires" }, 0);
  assert.equal(downOf(h.actions).reason, "hold timer expired");
  const n = step(established(), { type: "NotifMsg", code: 6, subcode: 4 }, 0);
  assert.equal(n.peer.lastError, "received NOTIFICATION 6/4");
});

Deno.test("fsm gr: the restart timer is a deadline; its expiry sweeps the stale routes", () => {
  const down = step(established({ restartTime: 120 }), { type: "TcpConnectionFails" }, 5000).peer;
  assert.equal(down.state, "Idle");
  assert.equal(down.staleAt, 125_000);
  // The restart back-off comes first; the stale deadline stays armed through the restart.
  assert.ok(nextDeadline(down)! < 125_000);
  assert.deepEqual(dueEvents({ ...down, idleHoldAt: undefined }, 124_999), []);
  assert.deepEqual(dueEvents({ ...down, idleHoldAt: undefined }, 125_000), [{ type: "StaleTimerExpires" }]);
  const r = step(down, { type: "StaleTimerExpires" }, 125_000);
  assert.deepEqual(r.actions, [{ type: "sweepStale" }]);
  assert.equal(r.peer.staleAt, undefined);
  assert.equal(r.peer.state, "Idle");
});

Deno.test("fsm gr: End-of-RIB stops the restart timer only when no stale route is left", () => {
  const down = step(established({ restartTime: 120 }), { type: "TcpConnectionFails" }, 0).peer;
  const back = run(down, [
    { type: "AutomaticStart" },
    { type: "TcpCrAcked" },
    { type: "BGPOpen", holdTime: 30, gr: { restartTime: 120 } },
    { type: "KeepAliveMsg" },
  ], 10_000).p;
  assert.equal(back.state, "Established");
  assert.equal(back.staleAt, 120_000);
  const partial = step(back, { type: "PeerEndOfRib", staleLeft: 3 }, 11_000);
  assert.equal(partial.peer.staleAt, 120_000);
  assert.deepEqual(partial.actions, []);
  const all = step(partial.peer, { type: "PeerEndOfRib", staleLeft: 0 }, 12_000);
  assert.equal(all.peer.staleAt, undefined);
});

Deno.test("fsm gr: a restarting speaker defers its advertisement until End-of-RIB or the deadline", () => {
  const { p, actions } = run(newPeer(cfg), [
    { type: "ManualStart" },
    { type: "TcpCrAcked" },
    { type: "BGPOpen", holdTime: 30, gr: { restartTime: 120, deferralTime: 360 } },
    { type: "KeepAliveMsg" },
  ], 1000);
  assert.deepEqual(actions.at(-1), { type: "established", deferExport: true });
  assert.equal(p.deferralAt, 361_000);
  // Deadline first...
  assert.ok(dueEvents(p, 361_000).some((e) => e.type === "DeferralTimerExpires"));
  const t = step(p, { type: "DeferralTimerExpires" }, 361_000);
  assert.deepEqual(t.actions, [{ type: "beginExport" }]);
  assert.equal(t.peer.deferralAt, undefined);
  // ...or End-of-RIB, whichever comes first; the other then does nothing.
  const e = step(p, { type: "PeerEndOfRib", staleLeft: 0 }, 2000);
  assert.deepEqual(e.actions, [{ type: "beginExport" }]);
  assert.deepEqual(step(e.peer, { type: "PeerEndOfRib", staleLeft: 0 }, 3000).actions, []);
  assert.deepEqual(dueEvents(e.peer, 1e12).filter((x) => x.type === "DeferralTimerExpires"), []);
  // Leaving Established cancels a deferral still running.
  const d = step(p, { type: "TcpConnectionFails" }, 5000);
  assert.equal(d.peer.deferralAt, undefined);
  // Not restarting: export at once.
  const plain = run(newPeer(cfg), [
    { type: "ManualStart" },
    { type: "TcpCrAcked" },
    { type: "BGPOpen", holdTime: 30 },
    { type: "KeepAliveMsg" },
  ]);
  assert.deepEqual(plain.actions.at(-1), { type: "established", deferExport: false });
});

Deno.test("fsm bfd: BFD down sends Cease/10 and holds Idle with no restart until BFD is up", () => {
  const r = step(established(), { type: "BfdDown", reason: "BFD session down (diagnostic 1)" }, 1000);
  assert.equal(r.peer.state, "Idle");
  assert.equal(r.peer.bfdHeld, true);
  assert.deepEqual(r.actions.map((a) => a.type), ["sendNotification", "down", "close"]);
  assert.deepEqual(r.actions[0], { type: "sendNotification", notify: { code: 6, subcode: 10 } });
  assert.equal(r.peer.lastError, "BFD session down (diagnostic 1)");
  assert.equal(r.peer.idleHoldAt, undefined);
  assert.equal(nextDeadline(r.peer), undefined);
  // An automatic start (e.g. an incoming connection) is refused while held.
  const a = step(r.peer, { type: "AutomaticStart" }, 2000);
  assert.equal(a.peer.state, "Idle");
  assert.deepEqual(a.actions, []);
  // BFD up: dial at once.
  const up = step(r.peer, { type: "BfdUp" }, 3000);
  assert.equal(up.peer.bfdHeld, false);
  assert.equal(up.peer.state, "Connect");
  assert.deepEqual(up.actions, [{ type: "connect" }]);
  // BfdUp without a hold changes nothing.
  const e = established();
  assert.deepEqual(step(e, { type: "BfdUp" }, 0), { peer: e, actions: [] });
});

Deno.test("fsm bfd: BFD down while connecting drops the attempt without NOTIFICATION; stopped peers stay down", () => {
  const connecting = step(newPeer(cfg), { type: "ManualStart" }, 0).peer;
  const r = step(connecting, { type: "BfdDown", reason: "BFD session down (diagnostic 3)" }, 10);
  assert.equal(r.peer.state, "Idle");
  assert.deepEqual(r.actions, [{ type: "close" }]);
  assert.equal(r.peer.idleHoldAt, undefined);
  const stopped = step(r.peer, { type: "ManualStop" }, 20).peer;
  const up = step(stopped, { type: "BfdUp" }, 30);
  assert.equal(up.peer.state, "Idle");
  assert.deepEqual(up.actions, []);
  // Idle and already held: only the hold is recorded.
  const idle = step(newPeer(cfg), { type: "BfdDown", reason: "x" }, 0);
  assert.deepEqual(idle.actions, []);
  assert.equal(idle.peer.bfdHeld, true);
});

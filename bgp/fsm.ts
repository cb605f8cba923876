/**
 * The BGP finite state machine of RFC 4271 §8 as a PURE transition:
 * `step(peer, event, now) → { peer, actions }`. No sockets, no clocks: timers are absolute
 * deadlines (ms) on the peer, the session loop turns due deadlines into events (`dueEvents`)
 * and performs the returned actions (connect, send, close, ...).
 *
 * Deliberate choices (all allowed by §8):
 * - The optional IdleHoldTimer (§8.1.1, DampPeerOscillations) is how automatic restart works:
 *   every drop to Idle while the peer is administratively up arms it with an exponential,
 *   jittered, capped back-off derived from ConnectRetryCounter; its expiry is AutomaticStart.
 * - DelayOpen is not used (the optional attributes are off), so TcpConnectionFails in Connect
 *   goes to Idle as §8.2.2 says when the DelayOpenTimer is not running.
 * - OPEN validation (peer AS, hold time, identifier) is done by `open.ts` before the event is
 *   fed: a bad OPEN arrives here as `BGPOpenMsgErr` with the NOTIFICATION to send.
 * - Leaving Established emits `down` with a typed `DownCause`; the cause alone decides whether
 *   graceful restart keeps the peer's routes (`retainsRoutes`), never the text of a log message.
 * - The graceful-restart timers (RFC 4724: the peer's restart time for its stale routes, our
 *   selection deferral) are deadlines on the peer like the RFC 4271 timers, and BFD (RFC 5882)
 *   comes in as events: `BfdDown` holds the peer in Idle until `BfdUp`.
 *
 * @module
 */

import { CeaseSubcode } from "./codec/errors.ts";
import { ErrorCode } from "./codec/types.ts";

/** The six states of RFC 4271 §8.2.2. */
export type FsmState = "Idle" | "Connect" | "Active" | "OpenSent" | "OpenConfirm" | "Established";

/** Per-peer configuration the FSM needs (seconds, like the protocol). */
export interface FsmConfig {
  /** Our proposed hold time (s); 0 disables keepalives, otherwise ≥ 3. */
  holdTime: number;
  /** ConnectRetryTime (s), also the base of the restart back-off. */
  connectRetryTime: number;
  /** Cap of the restart back-off (s). */
  maxBackoff: number;
  /** PassiveTcpEstablishment: never initiate a connection. */
  passive: boolean;
}

/** The state of one peer's FSM. Immutable: `step` returns a new object. */
export interface FsmPeer {
  readonly config: FsmConfig;
  readonly state: FsmState;
  /** True between ManualStart and ManualStop: drops to Idle restart automatically. */
  readonly adminUp: boolean;
  readonly connectRetryCounter: number;
  /** Hold time negotiated in the last OPEN exchange (s). */
  readonly holdTime: number;
  /** Keepalive interval (s): holdTime/3, 0 when holdTime is 0. */
  readonly keepaliveTime: number;
  /** Absolute deadlines in ms; undefined = timer stopped. */
  readonly connectRetryAt?: number;
  readonly holdAt?: number;
  readonly keepaliveAt?: number;
  readonly idleHoldAt?: number;
  /** When Established was entered (ms). */
  readonly establishedAt?: number;
  /** xorshift32 state for the back-off jitter, so the transition stays pure and replayable. */
  readonly rng: number;
  /** Last reason the session went down, for status output. */
  readonly lastError?: string;
  /** BFD reported the path down: stay in Idle (no automatic start) until `BfdUp`. */
  readonly bfdHeld?: boolean;
  /** The peer's GR restart time (s) when GR was negotiated both ways (RFC 4724 §4.2); else undefined. */
  readonly grRestartTime?: number;
  /** Our selection deferral (s) when we restart and the peer does GR (RFC 4724 §4.1); else undefined. */
  readonly grDeferralTime?: number;
  /** RFC 4724 §4.2 restart timer: when the peer's stale routes are flushed. */
  readonly staleAt?: number;
  /** RFC 4724 §4.1 deferral: when we advertise even without the peer's End-of-RIB. */
  readonly deferralAt?: number;
}

/** A NOTIFICATION to send: code/subcode of RFC 4271 §4.5. */
export interface Notify {
  code: number;
  subcode: number;
  data?: Uint8Array;
}

/** FSM input events (RFC 4271 §8.1.2–8.1.5; names follow the RFC). */
export type FsmEvent =
  | { type: "ManualStart" } // Event 1 (and 4/5: passive is in the config)
  | { type: "ManualStop" } // Event 2
  | { type: "AutomaticStart" } // Event 3 (IdleHoldTimer expiry)
  | { type: "AutomaticStop"; reason: string; notify?: Notify } // Event 8
  | { type: "ConnectRetryTimerExpires" } // Event 9
  | { type: "HoldTimerExpires" } // Event 10
  | { type: "KeepaliveTimerExpires" } // Event 11
  | { type: "TcpCrAcked" } // Event 16: our outgoing connection succeeded
  | { type: "TcpConnectionConfirmed" } // Event 17: an incoming connection was accepted
  | { type: "TcpConnectionFails"; reason?: string } // Event 18
  | {
    type: "BGPOpen";
    holdTime: number;
    /** Graceful restart as negotiated: the peer's restart time, our deferral (both optional). */
    gr?: { restartTime?: number; deferralTime?: number };
  } // Event 19, already validated
  | { type: "BGPHeaderErr"; notify: Notify } // Event 21
  | { type: "BGPOpenMsgErr"; notify: Notify } // Event 22
  | { type: "OpenCollisionDump" } // Event 23
  | { type: "NotifMsgVerErr" } // Event 24
  | { type: "NotifMsg"; code: number; subcode: number } // Event 25
  | { type: "KeepAliveMsg" } // Event 26
  | { type: "UpdateMsg" } // Event 27
  | { type: "UpdateMsgErr"; notify: Notify } // Event 28
  | { type: "RouteRefreshMsg" }
  // RFC 4724 (graceful restart) and RFC 5882 (BFD) inputs; they are valid in every state.
  | { type: "StaleTimerExpires" } // the peer's restart time ran out: flush its stale routes
  | { type: "DeferralTimerExpires" } // our selection deferral ran out: advertise now
  | { type: "PeerEndOfRib"; staleLeft: number } // End-of-RIB received; stale routes still kept
  | { type: "BfdDown"; reason: string } // BFD left Up: Cease/10 and hold in Idle (RFC 9384)
  | { type: "BfdUp" }; // BFD is Up (again): lift the hold

/**
 * Why a session left Established (or dropped to Idle): the typed reason that drives graceful
 * restart (`retainsRoutes`) and, through `describeCause`, the text shown as `lastError`.
 */
export type DownCause =
  | { kind: "admin-stop" } // ManualStop
  | { kind: "automatic-stop"; reason: string } // AutomaticStop (peer removed, internal error, ...)
  | { kind: "hold-timer-expired" }
  | { kind: "tcp-failed"; reason?: string } // read/write error, peer closed, peer restarted
  | { kind: "notification-sent"; notify: Notify } // header/OPEN/UPDATE error we reported
  | { kind: "notification-received"; code: number; subcode: number }
  | { kind: "version-rejected" } // NOTIFICATION 2/1
  | { kind: "fsm-error"; event: FsmEvent["type"]; state: FsmState }
  | { kind: "unexpected-event"; event: FsmEvent["type"]; state: FsmState } // before OpenSent
  | { kind: "collision" } // OpenCollisionDump
  | { kind: "bfd-down"; reason: string };

/** The text of a cause, as `lastError` and the `down` action's `reason` show it. */
export function describeCause(c: DownCause): string {
  switch (c.kind) {
    case "admin-stop":
      return "administratively stopped";
    case "automatic-stop":
    case "bfd-down":
      return c.reason;
    case "hold-timer-expired":
      return "hold timer expired";
    case "tcp-failed":
      return c.reason ?? "TCP connection failed";
    case "notification-sent":
      return `sent NOTIFICATION ${c.notify.code}/${c.notify.subcode}`;
    case "notification-received":
      return `received NOTIFICATION ${c.code}/${c.subcode}`;
    case "version-rejected":
      return "peer rejected our version";
    case "fsm-error":
      return `FSM error: ${c.event} in ${c.state}`;
    case "unexpected-event":
      return `unexpected ${c.event} in ${c.state}`;
    case "collision":
      return "connection collision resolution";
  }
}

/**
 * Whether a graceful-restart helper keeps the peer's routes (stale, for its restart time) after
 * a session ended this way. RFC 4724 §4.2: GR covers a session lost without a NOTIFICATION
 * exchanged for a protocol error or an administrative decision. We do not announce the N bit
 * (RFC 8538), so a NOTIFICATION received, or sent for an error in the peer's messages or for an
 * FSM error, ends GR, and so does our own administrative stop. A dead transport, a hold timer
 * that ran out (RFC 8538 §4 also treats it as a restart), BFD declaring the path down, an
 * automatic stop (the peer is taken down from outside, not because its messages were wrong)
 * keep them.
 */
export function retainsRoutes(c: DownCause): boolean {
  switch (c.kind) {
    case "tcp-failed":
    case "hold-timer-expired":
    case "bfd-down":
    case "automatic-stop":
    case "collision":
    case "version-rejected":
    case "unexpected-event":
      return true;
    case "admin-stop":
    case "notification-sent":
    case "notification-received":
    case "fsm-error":
      return false;
  }
}

/** What the session must do, in order. */
export type FsmAction =
  | { type: "connect" } // initiate a TCP connection
  | { type: "sendOpen" }
  | { type: "sendKeepalive" }
  | { type: "sendNotification"; notify: Notify }
  | { type: "close" } // drop the TCP connection
  /** Start the route exchange; `deferExport`: wait for the peer's End-of-RIB first (RFC 4724 §4.1). */
  | { type: "established"; deferExport: boolean }
  /** Left Established: release the peer's routes, or (`routes: "stale"`) keep them stale under GR. */
  | { type: "down"; reason: string; cause: DownCause; routes: "drop" | "stale" }
  | { type: "beginExport" } // the deferral ended (End-of-RIB or timer): advertise to the peer
  | { type: "sweepStale" }; // the restart timer ran out: flush the peer's stale routes

/** Hold time set on entering OpenSent (§8.2.2 "large value", suggested 4 minutes). */
export const LARGE_HOLD_TIME = 240;

const FSM_ERROR = ErrorCode.FsmError;
const HOLD_TIMER_EXPIRED = ErrorCode.HoldTimerExpired;
const CEASE = ErrorCode.Cease;

/** A fresh peer in Idle, administratively down. */
export function newPeer(config: FsmConfig, seed = 0x9e3779b9): FsmPeer {
  return {
    config,
    state: "Idle",
    adminUp: false,
    connectRetryCounter: 0,
    holdTime: config.holdTime,
    keepaliveTime: Math.floor(config.holdTime / 3),
    rng: seed >>> 0 || 1,
  };
}

/** Negotiated hold time (RFC 4271 §4.2): the smaller of both proposals; 0 means no keepalives. */
export function negotiateHoldTime(ours: number, theirs: number): number {
  return Math.min(ours, theirs);
}

function xorshift(x: number): number {
  x ^= x << 13;
  x >>>= 0;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
}

/**
 * Back-off before the next automatic start: connectRetryTime × 2^(failures-1), capped at
 * maxBackoff, multiplied by a jitter in [0.75, 1) (RFC 4271 §10 asks for jitter on timers).
 */
export function backoffMs(config: FsmConfig, failures: number, rng: number): number {
  const base = Math.max(config.connectRetryTime, 0.05) * 1000;
  const exp = Math.min(base * 2 ** Math.max(0, failures - 1), config.maxBackoff * 1000);
  const jitter = 0.75 + (rng / 0x100000000) * 0.25;
  return Math.round(exp * jitter);
}

interface Out {
  peer: FsmPeer;
  actions: FsmAction[];
}

/**
 * The single place that changes state. Leaving OpenSent/OpenConfirm/Established for Idle or
 * Active tears the connection down; leaving Established emits `down`; entering Idle while
 * administratively up arms the back-off (IdleHoldTimer). Timers not meaningful in the new state
 * are stopped here so no stale deadline can fire.
 */
function enterState(
  p: FsmPeer,
  to: FsmState,
  now: number,
  actions: FsmAction[],
  opts: { cause?: DownCause; counter?: "reset" | "increment"; close?: boolean } = {},
): Out {
  let counter = p.connectRetryCounter;
  if (opts.counter === "reset") counter = 0;
  if (opts.counter === "increment") counter++;
  let next: FsmPeer = { ...p, state: to, connectRetryCounter: counter };
  const reason = opts.cause && describeCause(opts.cause);
  if (reason !== undefined) next = { ...next, lastError: reason };
  if (p.state === "Established" && to !== "Established") {
    const cause: DownCause = opts.cause ?? { kind: "tcp-failed", reason: "unknown" };
    // RFC 4724 §4.2: keep the routes stale for the peer's restart time, or drop them now.
    const stale = p.grRestartTime !== undefined && retainsRoutes(cause);
    actions.push({ type: "down", reason: reason ?? "unknown", cause, routes: stale ? "stale" : "drop" });
    next = {
      ...next,
      establishedAt: undefined,
      deferralAt: undefined,
      staleAt: stale ? now + p.grRestartTime! * 1000 : undefined,
    };
  }
  if (opts.close) actions.push({ type: "close" });
  if (to === "Idle" || to === "Active" || to === "Connect") {
    next = { ...next, holdAt: undefined, keepaliveAt: undefined };
  }
  if (to === "Idle") {
    next = { ...next, connectRetryAt: undefined, idleHoldAt: undefined };
    if (p.adminUp) {
      const rng = xorshift(p.rng);
      next = {
        ...next,
        rng,
        idleHoldAt: now + backoffMs(p.config, Math.max(1, counter), rng),
      };
    }
  }
  if (to === "Established") {
    const defer = p.grDeferralTime;
    next = {
      ...next,
      establishedAt: now,
      lastError: undefined,
      deferralAt: defer === undefined ? undefined : now + defer * 1000,
    };
    actions.push({ type: "established", deferExport: defer !== undefined });
  }
  return { peer: next, actions };
}

function start(p: FsmPeer, now: number, actions: FsmAction[]): Out {
  const cr = now + p.config.connectRetryTime * 1000;
  const q: FsmPeer = { ...p, adminUp: true, idleHoldAt: undefined, connectRetryAt: cr };
  if (p.config.passive) return enterState(q, "Active", now, actions);
  actions.push({ type: "connect" });
  return enterState(q, "Connect", now, actions);
}

/** On a TCP connection (either direction): send OPEN, hold timer at the large value (§8.2.2). */
function connected(p: FsmPeer, now: number, actions: FsmAction[]): Out {
  actions.push({ type: "sendOpen" });
  const q: FsmPeer = { ...p, connectRetryAt: undefined, holdAt: now + LARGE_HOLD_TIME * 1000 };
  return enterState(q, "OpenSent", now, actions);
}

/** Any event the state does not expect once a connection exists: FSM error (§6.6). */
function fsmError(p: FsmPeer, now: number, actions: FsmAction[], ev: FsmEvent): Out {
  actions.push({ type: "sendNotification", notify: { code: FSM_ERROR, subcode: 0 } });
  return enterState(p, "Idle", now, actions, {
    cause: { kind: "fsm-error", event: ev.type, state: p.state },
    counter: "increment",
    close: true,
  });
}

function stopped(p: FsmPeer, now: number, actions: FsmAction[], notify: boolean): Out {
  if (notify) {
    actions.push({
      type: "sendNotification",
      notify: { code: CEASE, subcode: CeaseSubcode.AdministrativeShutdown },
    });
  }
  return enterState({ ...p, adminUp: false }, "Idle", now, actions, {
    cause: { kind: "admin-stop" },
    counter: "reset",
    close: p.state !== "Idle",
  });
}

function restartHold(p: FsmPeer, now: number): FsmPeer {
  return p.holdTime === 0 ? p : { ...p, holdAt: now + p.holdTime * 1000 };
}

/**
 * One FSM transition. `now` is milliseconds on any monotonic clock (the session uses
 * `performance.now()`, tests a fake clock).
 */
export function step(peer: FsmPeer, ev: FsmEvent, now: number): Out {
  const a: FsmAction[] = [];
  const p = peer;
  switch (ev.type) {
    case "StaleTimerExpires":
    case "DeferralTimerExpires":
    case "PeerEndOfRib":
    case "BfdDown":
    case "BfdUp":
      return extensionEvent(p, ev, now, a);
  }
  switch (p.state) {
    case "Idle":
      // §8.2.2 Idle: only start events matter; everything else is ignored.
      if (ev.type === "AutomaticStart" && p.bfdHeld) {
        // The back-off ran out but BFD still calls the path dead: wait for BfdUp instead.
        return { peer: { ...p, idleHoldAt: undefined }, actions: a };
      }
      if (ev.type === "ManualStart" || ev.type === "AutomaticStart") return start(p, now, a);
      if (ev.type === "ManualStop") {
        return { peer: { ...p, adminUp: false, idleHoldAt: undefined }, actions: a };
      }
      return { peer: p, actions: a };

    case "Connect":
    case "Active":
      return connectingStates(p, ev, now, a);

    case "OpenSent":
    case "OpenConfirm":
    case "Established":
      return connectedStates(p, ev, now, a);
  }
}

/** The graceful-restart (RFC 4724) and BFD (RFC 5882) events, the same in every state. */
function extensionEvent(p: FsmPeer, ev: FsmEvent, now: number, a: FsmAction[]): Out {
  switch (ev.type) {
    case "StaleTimerExpires":
      a.push({ type: "sweepStale" });
      return { peer: { ...p, staleAt: undefined }, actions: a };
    case "DeferralTimerExpires":
      a.push({ type: "beginExport" });
      return { peer: { ...p, deferralAt: undefined }, actions: a };
    case "PeerEndOfRib":
      // Its End-of-RIB ends our deferral; the restart timer stops once no stale route is left.
      if (p.deferralAt !== undefined) a.push({ type: "beginExport" });
      return {
        peer: { ...p, deferralAt: undefined, staleAt: ev.staleLeft ? p.staleAt : undefined },
        actions: a,
      };
    case "BfdDown": {
      // RFC 5882 §4.3: down at once (Cease/10 "BFD Down", RFC 9384 when a connection exists), then
      // no automatic restart: re-establishing over a path BFD calls dead would only flap.
      const cause: DownCause = { kind: "bfd-down", reason: ev.reason };
      let r: Out = { peer: p, actions: a };
      if (p.state === "Connect" || p.state === "Active") {
        r = enterState(p, "Idle", now, a, { cause, counter: "increment", close: true });
      } else if (p.state !== "Idle") {
        a.push({ type: "sendNotification", notify: { code: CEASE, subcode: CeaseSubcode.BfdDown } });
        r = enterState(p, "Idle", now, a, { cause, counter: "increment", close: true });
      }
      return { peer: { ...r.peer, bfdHeld: true, idleHoldAt: undefined }, actions: r.actions };
    }
    case "BfdUp": {
      if (!p.bfdHeld) return { peer: p, actions: a };
      const q: FsmPeer = { ...p, bfdHeld: false };
      if (q.state === "Idle" && q.adminUp) return start(q, now, a);
      return { peer: q, actions: a };
    }
    default:
      return { peer: p, actions: a };
  }
}

function connectingStates(p: FsmPeer, ev: FsmEvent, now: number, a: FsmAction[]): Out {
  switch (ev.type) {
    case "ManualStart":
    case "AutomaticStart":
      return { peer: p, actions: a }; // ignored (§8.2.2)
    case "ManualStop":
      return stopped(p, now, a, false);
    case "AutomaticStop":
      return enterState(p, "Idle", now, a, {
        cause: { kind: "automatic-stop", reason: ev.reason },
        counter: "increment",
        close: true,
      });
    case "ConnectRetryTimerExpires": {
      // Connect: drop the attempt and dial again. Active: go back to dialling unless passive.
      const q = { ...p, connectRetryAt: now + p.config.connectRetryTime * 1000 };
      if (p.config.passive) return { peer: q, actions: a };
      if (p.state === "Connect") a.push({ type: "close" });
      a.push({ type: "connect" });
      return enterState(q, "Connect", now, a);
    }
    case "TcpCrAcked":
    case "TcpConnectionConfirmed":
      return connected(p, now, a);
    case "TcpConnectionFails":
      return enterState(p, "Idle", now, a, {
        cause: { kind: "tcp-failed", reason: ev.reason },
        counter: "increment",
        close: true,
      });
    default:
      return enterState(p, "Idle", now, a, {
        cause: { kind: "unexpected-event", event: ev.type, state: p.state },
        counter: "increment",
        close: true,
      });
  }
}

function connectedStates(p: FsmPeer, ev: FsmEvent, now: number, a: FsmAction[]): Out {
  switch (ev.type) {
    case "ManualStart":
    case "AutomaticStart":
      return { peer: p, actions: a };
    case "ManualStop":
      return stopped(p, now, a, true);
    case "AutomaticStop":
      a.push({
        type: "sendNotification",
        notify: ev.notify ?? { code: CEASE, subcode: CeaseSubcode.AdministrativeReset },
      });
      return enterState(p, "Idle", now, a, {
        cause: { kind: "automatic-stop", reason: ev.reason },
        counter: "increment",
        close: true,
      });
    case "HoldTimerExpires":
      a.push({ type: "sendNotification", notify: { code: HOLD_TIMER_EXPIRED, subcode: 0 } });
      return enterState(p, "Idle", now, a, {
        cause: { kind: "hold-timer-expired" },
        counter: "increment",
        close: true,
      });
    case "KeepaliveTimerExpires":
      if (p.state === "OpenSent") return fsmError(p, now, a, ev);
      a.push({ type: "sendKeepalive" });
      return {
        peer: { ...p, keepaliveAt: p.keepaliveTime ? now + p.keepaliveTime * 1000 : undefined },
        actions: a,
      };
    case "ConnectRetryTimerExpires":
    case "TcpCrAcked":
    case "TcpConnectionConfirmed":
      // A second connection while one exists is resolved by the session (§6.8), never here.
      return fsmError(p, now, a, ev);
    case "TcpConnectionFails":
      if (p.state === "OpenSent") {
        // §8.2.2 OpenSent: close, restart ConnectRetryTimer, keep listening → Active.
        const q = { ...p, connectRetryAt: now + p.config.connectRetryTime * 1000 };
        return enterState(q, "Active", now, a, {
          cause: { kind: "tcp-failed", reason: ev.reason },
          close: true,
        });
      }
      return enterState(p, "Idle", now, a, {
        cause: { kind: "tcp-failed", reason: ev.reason },
        counter: "increment",
        close: true,
      });
    case "BGPOpen": {
      if (p.state !== "OpenSent") return fsmError(p, now, a, ev);
      const hold = negotiateHoldTime(p.config.holdTime, ev.holdTime);
      const keepalive = Math.floor(hold / 3);
      a.push({ type: "sendKeepalive" });
      const gr = ev.gr;
      const q: FsmPeer = {
        ...p,
        grRestartTime: gr?.restartTime && gr.restartTime > 0 ? gr.restartTime : undefined,
        grDeferralTime: gr?.deferralTime,
        holdTime: hold,
        keepaliveTime: keepalive,
        connectRetryAt: undefined,
        holdAt: hold === 0 ? undefined : now + hold * 1000,
        keepaliveAt: keepalive === 0 ? undefined : now + keepalive * 1000,
      };
      return enterState(q, "OpenConfirm", now, a);
    }
    case "BGPHeaderErr":
    case "BGPOpenMsgErr":
    case "UpdateMsgErr":
      a.push({ type: "sendNotification", notify: ev.notify });
      return enterState(p, "Idle", now, a, {
        cause: { kind: "notification-sent", notify: ev.notify },
        counter: "increment",
        close: true,
      });
    case "OpenCollisionDump":
      a.push({
        type: "sendNotification",
        notify: { code: CEASE, subcode: CeaseSubcode.ConnectionCollisionResolution },
      });
      return enterState(p, "Idle", now, a, {
        cause: { kind: "collision" },
        counter: "increment",
        close: true,
      });
    case "NotifMsgVerErr":
      return enterState(p, "Idle", now, a, { cause: { kind: "version-rejected" }, close: true });
    case "NotifMsg":
      return enterState(p, "Idle", now, a, {
        cause: { kind: "notification-received", code: ev.code, subcode: ev.subcode },
        counter: "increment",
        close: true,
      });
    case "KeepAliveMsg":
      if (p.state === "OpenSent") return fsmError(p, now, a, ev);
      if (p.state === "OpenConfirm") return enterState(restartHold(p, now), "Established", now, a);
      return { peer: restartHold(p, now), actions: a };
    case "UpdateMsg":
    case "RouteRefreshMsg":
      if (p.state !== "Established") return fsmError(p, now, a, ev);
      return { peer: restartHold(p, now), actions: a };
    default:
      return { peer: p, actions: a }; // GR/BFD events are handled before the state switch
  }
}

/** The timer events due at `now`, in a fixed order (hold first: a dead peer wins over a keepalive). */
export function dueEvents(p: FsmPeer, now: number): FsmEvent[] {
  const out: FsmEvent[] = [];
  if (p.holdAt !== undefined && p.holdAt <= now) out.push({ type: "HoldTimerExpires" });
  if (p.keepaliveAt !== undefined && p.keepaliveAt <= now) out.push({ type: "KeepaliveTimerExpires" });
  if (p.connectRetryAt !== undefined && p.connectRetryAt <= now) {
    out.push({ type: "ConnectRetryTimerExpires" });
  }
  if (p.idleHoldAt !== undefined && p.idleHoldAt <= now) out.push({ type: "AutomaticStart" });
  if (p.staleAt !== undefined && p.staleAt <= now) out.push({ type: "StaleTimerExpires" });
  if (p.deferralAt !== undefined && p.deferralAt <= now) out.push({ type: "DeferralTimerExpires" });
  return out;
}

/** The earliest armed deadline, or undefined when no timer runs. */
export function nextDeadline(p: FsmPeer): number | undefined {
  const ds = [p.holdAt, p.keepaliveAt, p.connectRetryAt, p.idleHoldAt, p.staleAt, p.deferralAt].filter((
    d,
  ): d is number => d !== undefined);
  return ds.length ? Math.min(...ds) : undefined;
}

/**
 * Connection collision resolution (RFC 4271 §6.8): compare BGP identifiers as 32-bit unsigned
 * integers. If ours is lower, the connection WE initiated is closed and the one the peer initiated
 * kept; otherwise the peer-initiated one is closed.
 */
export function resolveCollision(
  localId: string,
  remoteId: string,
): "keep-local-initiated" | "keep-remote-initiated" {
  return ipv4ToInt(localId) < ipv4ToInt(remoteId) ? "keep-remote-initiated" : "keep-local-initiated";
}

/**
 * Which of two connections with the same peer survives (RFC 4271 §6.8), given the direction of
 * each (`true` = we initiated it). With opposite directions the BGP identifiers decide (the
 * connection initiated by the higher identifier survives), so both speakers pick the same
 * physical connection whichever one each of them had first. Two connections initiated by the
 * same side can only be the peer dialling again after giving up its first: the newer survives.
 */
export function collisionSurvivor(
  localId: string,
  remoteId: string,
  existingOutgoing: boolean,
  candidateOutgoing: boolean,
): "existing" | "candidate" {
  if (existingOutgoing === candidateOutgoing) return candidateOutgoing ? "existing" : "candidate";
  const keepLocal = resolveCollision(localId, remoteId) === "keep-local-initiated";
  return keepLocal === candidateOutgoing ? "candidate" : "existing";
}

/** Dotted quad → unsigned 32-bit integer. */
export function ipv4ToInt(a: string): number {
  const p = a.split(".");
  return ((+p[0] << 24) | (+p[1] << 16) | (+p[2] << 8) | +p[3]) >>> 0;
}

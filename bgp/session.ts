/**
 * One configured peer's session: the loop that turns messages and due deadlines into FSM events
 * (`fsm.ts`) and performs the FSM's actions (connect, send, close, established, down, GR). The
 * pieces below it are separate modules: `connect.ts` dials, reads a second connection's OPEN and
 * refuses connections; `wire_io.ts` frames reads (with back-pressure) and coalesces writes;
 * `rde.ts` turns UPDATEs into typed RIB inputs. Nothing a peer sends can throw out of here:
 * decode errors become the codec's NOTIFICATION and a reset, per RFC 4271 §6 / RFC 7606.
 *
 * Connection handling:
 * - outgoing connections go through `bgp/transport` (`connectTcp`: local address, TTL, MD5);
 * - incoming ones are handed over by the speaker's shared listener (`incoming`);
 * - a second connection while one is in OpenSent/OpenConfirm is a collision (§6.8): we read its
 *   OPEN and keep the connection the lower router ID says to keep; in Established the new one is
 *   refused, except with graceful restart negotiated, where it means the peer restarted
 *   (RFC 4724 §4.2) and replaces the old one.
 *
 * @module
 */

import { type BgpError, CeaseSubcode } from "./codec/errors.ts";
import {
  AFI,
  type Afi,
  type BgpMessage,
  type CodecContext,
  defaultCodecContext,
  ErrorCode,
  MessageType,
  type OpenMessage,
  SAFI,
  type UpdateMessage,
} from "./codec/types.ts";
import type { PeerConfig } from "./config.ts";
import { dialPeer, errMsg, normaliseRemote, readPeerOpen, rejectConn, safeClose } from "./connect.ts";
import {
  collisionSurvivor,
  type DownCause,
  dueEvents,
  type FsmAction,
  type FsmEvent,
  type FsmPeer,
  newPeer,
  nextDeadline,
  type Notify,
  step,
} from "./fsm.ts";
import { linkLocalOfLocalAddress } from "./link_local.ts";
import { buildOpen, type LocalOpenParams, negotiate, type Negotiated } from "./negotiate.ts";
import { endOfRib, packBatch } from "./pack.ts";
import { isLinkLocal6 } from "./prefix.ts";
import { applyRibInput, ribInputs } from "./rde.ts";
import type { OutBatch, Rib, Source, Target } from "./rib.ts";
import type { BgpConn } from "./transport/mod.ts";
import { decodeMessage, encodeMessage, maxLength } from "./wire.ts";
import { WireConn, type WireHandler } from "./wire_io.ts";

/** What a session needs from its speaker. */
export interface SessionHost {
  rib: Rib;
  asn: number;
  routerId: string;
  /** Our GR parameters, if GR is configured. */
  gracefulRestart?: { restartTime: number; deferralTime: number; restarting: boolean };
  log(level: "debug" | "info" | "warning" | "error", msg: string, fields?: Record<string, unknown>): void;
  /** Ask the speaker to run a RIB flush soon. */
  scheduleFlush(): void;
  /** Called on every FSM state change. */
  stateChanged(s: PeerSession): void;
}

/** Counters reported by `peers()`. */
export interface SessionCounters {
  messagesIn: number;
  messagesOut: number;
  updatesIn: number;
  updatesOut: number;
  notificationsIn: number;
  notificationsOut: number;
  /** UPDATE errors handled without a reset (RFC 7606 treat-as-withdraw / attribute discard). */
  updateErrors: number;
}

const CEASE = ErrorCode.Cease;

/** One peer's session. */
export class PeerSession {
  cfg: PeerConfig;
  fsm: FsmPeer;
  readonly src: Source;
  readonly target: Target;
  neg?: Negotiated;
  counters: SessionCounters = {
    messagesIn: 0,
    messagesOut: 0,
    updatesIn: 0,
    updatesOut: 0,
    notificationsIn: 0,
    notificationsOut: 0,
    updateErrors: 0,
  };
  lastError?: string;

  #host: SessionHost;
  /** The current connection; a dropped one keeps draining its own write queue until closed. */
  #conn: WireConn | null = null;
  /** What `#conn` reports; one object for the session's lifetime. */
  #wire: WireHandler;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The close still finishing on the last dropped connection (its NOTIFICATION), for `stop`. */
  #closing: Promise<void> | null = null;
  #eorPending = false;
  #sentOpens = 0;
  #dialAbort: AbortController | null = null;
  /**
   * Our dial still in flight when the peer dropped the session's connection with Cease/7: the
   * peer chose our connection (§6.8), so closing the dropped one must not cancel it.
   */
  #collisionDial: AbortController | null = null;
  /** Set while taking over a dialled connection on which our OPEN already went out. */
  #openAlreadySent = false;
  #stopped = false;

  constructor(host: SessionHost, cfg: PeerConfig, src: Source, target: Target) {
    this.#host = host;
    this.cfg = cfg;
    this.src = src;
    this.target = target;
    this.fsm = newPeer({
      holdTime: cfg.holdTime ?? 90,
      connectRetryTime: cfg.connectRetry ?? 5,
      maxBackoff: Math.max(cfg.connectRetry ?? 5, 120),
      passive: !!cfg.passive,
    }, hashSeed(cfg.address));
    this.#wire = {
      message: (bytes) => {
        this.counters.messagesIn++;
        this.#onMessage(bytes);
      },
      headerError: (e) => {
        this.dispatch({ type: "BGPHeaderErr", notify: { code: e.code, subcode: e.subcode, data: e.data } });
        this.lastError = e.message;
      },
      internalError: (err) => {
        // Our own bug on peer input: reset the session rather than the process.
        this.#host.log("error", "bgp internal error handling a message", {
          peer: this.cfg.address,
          error: errMsg(err),
        });
        this.dispatch({ type: "AutomaticStop", reason: `internal error: ${errMsg(err)}` });
      },
      failed: (reason) => this.dispatch({ type: "TcpConnectionFails", reason }),
      sliceDone: () => this.#host.scheduleFlush(),
    };
  }

  get state(): FsmPeer["state"] {
    return this.fsm.state;
  }

  get families(): Afi[] {
    return (this.cfg.families ?? [{ afi: AFI.IPv4, safi: SAFI.Unicast }]).map((f) => f.afi);
  }

  #now(): number {
    return performance.now();
  }

  #ctx(): CodecContext {
    return this.#conn?.ctx ?? defaultCodecContext;
  }

  start(): void {
    this.#stopped = false;
    this.dispatch({ type: "ManualStart" });
  }

  /** Administrative stop; `graceful` closes without NOTIFICATION so a GR peer keeps our routes. */
  async stop(opts: { graceful?: boolean; notify?: Notify } = {}): Promise<void> {
    this.#stopped = true;
    if (opts.graceful && this.#conn) {
      const c = this.#conn;
      this.#conn = null;
      await c.close();
      this.fsm = { ...step(this.fsm, { type: "ManualStop" }, this.#now()).peer };
    } else if (opts.notify && this.#conn) {
      this.dispatch({ type: "AutomaticStop", reason: "peer deconfigured", notify: opts.notify });
      this.dispatch({ type: "ManualStop" });
    } else {
      this.dispatch({ type: "ManualStop" });
    }
    await this.#closing;
    this.#clearTimers();
  }

  /**
   * BFD reports the forwarding path down (RFC 5882 §4.3): take the session down at once with
   * Cease/10 "BFD Down" (RFC 9384) and hold it in Idle, neither dialling nor accepting, until
   * `bfdUp` — re-establishing over a path BFD calls dead would only flap.
   */
  bfdDown(reason: string): void {
    this.dispatch({ type: "BfdDown", reason });
  }

  /** BFD is Up (again): lift the hold of `bfdDown` and restart at once if the peer is enabled. */
  bfdUp(): void {
    this.dispatch({ type: "BfdUp" });
  }

  /** True while BFD holds the session down. */
  get bfdHeld(): boolean {
    return !!this.fsm.bfdHeld;
  }

  /** Feed one event through the FSM and perform its actions. */
  dispatch(ev: FsmEvent): void {
    if (
      ev.type === "ConnectRetryTimerExpires" && this.fsm.state === "Connect" && this.#dialAbort && !this.#conn
    ) {
      // Our dial is still in flight (dialPeer's own timeout bounds it): keep it and only restart
      // the timer. Dropping it for a new socket (§8.2.2) gains nothing (the kernel retransmits
      // the SYN itself) and, with many peers on a busy process whose connect completions arrive
      // late, turns into a storm of abandoned connections that keeps sessions from coming up.
      this.fsm = { ...this.fsm, connectRetryAt: this.#now() + this.fsm.config.connectRetryTime * 1000 };
      this.#armTimer();
      return;
    }
    const before = this.fsm.state;
    const r = step(this.fsm, ev, this.#now());
    this.fsm = r.peer;
    for (const a of r.actions) this.#perform(a);
    if (this.fsm.lastError) this.lastError = this.fsm.lastError;
    if (before !== this.fsm.state) {
      this.#host.log("debug", "bgp peer state", { peer: this.cfg.address, from: before, to: this.fsm.state });
      this.#host.stateChanged(this);
    }
    this.#armTimer();
  }

  #clearTimers(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One timer for the FSM's earliest deadline (RFC 4271 timers and the GR ones alike). */
  #armTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#stopped && this.fsm.state === "Idle") return;
    const d = nextDeadline(this.fsm);
    if (d === undefined) return;
    this.#timer = setTimeout(async () => {
      // Give reads that completed while the event loop was busy (e.g. another peer's flood) a
      // chance to run first: a KEEPALIVE sitting in the socket must not lose to our hold timer.
      await new Promise((r) => setTimeout(r, 0));
      this.#timer = undefined;
      for (const ev of dueEvents(this.fsm, this.#now())) {
        // A previous event of the batch may have changed the state and stopped this timer.
        if (dueEvents(this.fsm, this.#now()).some((e) => e.type === ev.type)) this.dispatch(ev);
      }
      this.#armTimer();
    }, Math.max(0, d - this.#now()) + 1);
  }

  #perform(a: FsmAction): void {
    switch (a.type) {
      case "connect":
        this.#dial();
        return;
      case "sendOpen":
        if (!this.#openAlreadySent) this.#send(this.#open());
        return;
      case "sendKeepalive":
        this.#send({ type: MessageType.Keepalive });
        return;
      case "sendNotification":
        this.counters.notificationsOut++;
        this.#send({
          type: MessageType.Notification,
          code: a.notify.code,
          subcode: a.notify.subcode,
          data: a.notify.data ?? new Uint8Array(),
        });
        this.#host.log("info", "bgp notification sent", {
          peer: this.cfg.address,
          code: a.notify.code,
          subcode: a.notify.subcode,
        });
        return;
      case "close":
        this.#closeConn();
        return;
      case "established":
        this.#established(a.deferExport);
        return;
      case "down":
        this.#down(a.cause, a.reason, a.routes);
        return;
      case "beginExport":
        this.#beginExport();
        return;
      case "sweepStale":
        this.#sweepStale();
        return;
    }
  }

  #localParams(): LocalOpenParams {
    const gr = this.#host.gracefulRestart;
    return {
      asn: this.#host.asn,
      routerId: this.#host.routerId,
      holdTime: this.cfg.holdTime ?? 90,
      families: this.cfg.families ?? [{ afi: AFI.IPv4, safi: SAFI.Unicast }],
      gracefulRestart: gr && this.cfg.gracefulRestart !== false
        ? {
          restartTime: gr.restartTime,
          restarting: gr.restarting && this.#sentOpens === 0,
          forwardingPreserved: gr.restarting,
        }
        : undefined,
    };
  }

  #open(): OpenMessage {
    const o = buildOpen(this.#localParams());
    this.#sentOpens++;
    return o;
  }

  // ---- connections ----

  #dial(): void {
    this.#dialAbort?.abort();
    const ac = new AbortController();
    this.#dialAbort = ac;
    // The dial stays valid while its AbortController is the current one: an incoming connection
    // adopted meanwhile does not cancel it (see `incoming`), a close or a new dial does.
    const current = () => this.#dialAbort === ac && !ac.signal.aborted;
    dialPeer(this.cfg, ac).then(
      (conn) => {
        if (!current()) {
          safeClose(conn);
          return;
        }
        this.#dialAbort = null;
        const chosen = this.#collisionDial === ac;
        this.#collisionDial = null;
        const st = this.fsm.state;
        if (chosen && st === "Idle" && this.fsm.adminUp && !this.fsm.bfdHeld && !this.#stopped) {
          // The peer resolved the collision for this connection and dropped the other: carry on
          // here at once instead of waiting out the idle hold and dialling again.
          this.fsm = { ...this.fsm, state: "Connect", idleHoldAt: undefined };
          this.#adopt(conn, true);
          this.dispatch({ type: "TcpCrAcked" });
          return;
        }
        if (st === "Connect") {
          this.#adopt(conn, true);
          this.dispatch({ type: "TcpCrAcked" });
          return;
        }
        if (st === "OpenSent" || st === "OpenConfirm") {
          // We adopted the peer's connection while dialling: both exist, §6.8 picks one.
          this.#collisionCandidate(conn, true);
          return;
        }
        safeClose(conn);
      },
      (err) => {
        if (!current()) return;
        this.#dialAbort = null;
        this.#collisionDial = null;
        if (this.fsm.state !== "Connect") return; // we run on the peer's connection
        this.dispatch({ type: "TcpConnectionFails", reason: `connect: ${errMsg(err)}` });
      },
    );
  }

  /** Make `conn` the session's connection; `outgoing` records who initiated it (§6.8). */
  #adopt(conn: BgpConn, outgoing: boolean, initial?: Uint8Array): void {
    this.#conn?.close();
    const w = new WireConn(conn, outgoing, this.#wire, initial);
    this.#conn = w;
    w.start();
  }

  #closeConn(): void {
    if (this.#stopped || this.#dialAbort === null || this.#dialAbort !== this.#collisionDial) {
      this.#dialAbort?.abort();
      this.#dialAbort = null;
      this.#collisionDial = null;
    }
    const c = this.#conn;
    this.#conn = null;
    // The dropped connection's queue (e.g. the NOTIFICATION just queued) drains on its own
    // writer before the close; whatever is sent next goes to the next connection.
    if (c) this.#closing = c.close();
  }

  /** An incoming connection from this peer's address, handed over by the listener. */
  incoming(conn: BgpConn): void {
    const st = this.fsm.state;
    if (this.#stopped || (!this.fsm.adminUp && st === "Idle")) {
      safeClose(conn);
      return;
    }
    if (this.fsm.bfdHeld) {
      rejectConn(conn, { code: CEASE, subcode: 5 }); // Connection Rejected while BFD is down
      return;
    }
    if (st === "Idle" || st === "Connect" || st === "Active") {
      if (st === "Idle") this.dispatch({ type: "AutomaticStart" });
      // A dial in flight is NOT cancelled: if the peer is dialling us at the same moment and
      // adopts our connection the same way, cancelling both dials would kill both connections.
      // When our dial completes it becomes a collision candidate (§6.8) in `#dial`.
      this.#adopt(conn, false);
      this.fsm = { ...this.fsm, state: this.fsm.state === "Idle" ? "Active" : this.fsm.state };
      this.dispatch({ type: "TcpConnectionConfirmed" });
      return;
    }
    // OpenSent / OpenConfirm / Established: collision or peer restart. Read its OPEN first.
    this.#collisionCandidate(conn, false);
  }

  #collisionCandidate(conn: BgpConn, outgoing: boolean): void {
    this.#collision(conn, outgoing).catch((err) => {
      this.#host.log("debug", "bgp collision candidate failed", {
        peer: this.cfg.address,
        error: errMsg(err),
      });
      safeClose(conn);
    });
  }

  /**
   * A second connection with the peer (`outgoing`: one we dialled) while the session has one:
   * read the peer's OPEN on it, then keep the connection initiated by the speaker with the higher
   * BGP identifier (RFC 4271 §6.8), the same decision the peer takes from the same two IDs. On a
   * connection we dialled we send our OPEN first: the peer reads it to decide the same way.
   */
  async #collision(conn: BgpConn, outgoing: boolean): Promise<void> {
    const { open, rest } = await readPeerOpen(conn, outgoing ? this.#open() : undefined);
    const st = this.fsm.state;
    if (st === "Established") {
      if (!outgoing && this.neg?.gracefulRestart && this.neg.peerGracefulRestart) {
        // RFC 4724 §4.2: a new connection from a GR peer in Established means it restarted.
        this.#host.log("info", "bgp peer restarted (graceful restart)", { peer: this.cfg.address });
        this.dispatch({ type: "TcpConnectionFails", reason: "peer restarted" });
        this.#takeOver(conn, outgoing, open, rest);
        return;
      }
      await rejectConn(conn, { code: CEASE, subcode: 7 });
      return;
    }
    if (st !== "OpenSent" && st !== "OpenConfirm") {
      // The state moved on while we read: treat it as a plain new connection with its OPEN.
      if (st === "Idle" || st === "Active" || st === "Connect") {
        if (st === "Idle" && (!this.fsm.adminUp || this.fsm.bfdHeld)) {
          safeClose(conn);
          return;
        }
        this.#takeOver(conn, outgoing, open, rest);
        return;
      }
      safeClose(conn);
      return;
    }
    const existingOutgoing = this.#conn?.outgoing ?? false;
    const candidateWins =
      collisionSurvivor(this.#host.routerId, open.routerId, existingOutgoing, outgoing) === "candidate";
    this.#host.log("debug", "bgp connection collision", {
      peer: this.cfg.address,
      peerRouterId: open.routerId,
      kept: candidateWins ? (outgoing ? "ours (new)" : "theirs (new)") : "existing",
    });
    if (!candidateWins) {
      await rejectConn(conn, { code: CEASE, subcode: 7 });
      return;
    }
    this.dispatch({ type: "OpenCollisionDump" });
    this.#takeOver(conn, outgoing, open, rest);
  }

  /**
   * Continue on `conn` whose OPEN we already read: straight to OpenSent (sending our OPEN unless
   * we already did on a connection we dialled), then process the OPEN.
   */
  #takeOver(conn: BgpConn, outgoing: boolean, open: OpenMessage, rest: Uint8Array): void {
    this.#dialAbort?.abort();
    this.#dialAbort = null;
    this.fsm = { ...this.fsm, state: "Active", adminUp: true, idleHoldAt: undefined };
    this.#adopt(conn, outgoing, rest);
    this.#openAlreadySent = outgoing;
    this.dispatch({ type: "TcpConnectionConfirmed" });
    this.#openAlreadySent = false;
    this.#onOpen(open);
  }

  // ---- receiving ----

  #onMessage(bytes: Uint8Array): void {
    const dec = decodeMessage(bytes, this.#ctx());
    if (!dec.ok) {
      const e = dec.error;
      this.lastError = e.message;
      const notify = { code: e.code, subcode: e.subcode, data: e.data };
      if (e.code === ErrorCode.OpenMessage) this.dispatch({ type: "BGPOpenMsgErr", notify });
      else if (e.code === ErrorCode.UpdateMessage) this.dispatch({ type: "UpdateMsgErr", notify });
      else this.dispatch({ type: "BGPHeaderErr", notify });
      return;
    }
    if (dec.errors?.length) this.#noteUpdateErrors(dec.errors);
    const m: BgpMessage = dec.msg;
    switch (m.type) {
      case MessageType.Open:
        this.#onOpen(m);
        return;
      case MessageType.Keepalive:
        this.dispatch({ type: "KeepAliveMsg" });
        return;
      case MessageType.Notification:
        this.counters.notificationsIn++;
        this.#host.log("info", "bgp notification received", {
          peer: this.cfg.address,
          code: m.code,
          subcode: m.subcode,
        });
        if (
          m.code === CEASE && m.subcode === CeaseSubcode.ConnectionCollisionResolution && this.#dialAbort &&
          (this.fsm.state === "OpenSent" || this.fsm.state === "OpenConfirm")
        ) {
          // The peer dropped this connection for the other one, which is our dial still in flight.
          this.#collisionDial = this.#dialAbort;
        }
        if (m.code === ErrorCode.OpenMessage && m.subcode === 1) this.dispatch({ type: "NotifMsgVerErr" });
        else this.dispatch({ type: "NotifMsg", code: m.code, subcode: m.subcode });
        return;
      case MessageType.Update:
        this.counters.updatesIn++;
        this.dispatch({ type: "UpdateMsg" });
        if (this.fsm.state === "Established") this.#onUpdate(m);
        return;
      case MessageType.RouteRefresh:
        this.dispatch({ type: "RouteRefreshMsg" });
        if (this.fsm.state === "Established" && m.subtype === 0) this.#sendRefresh(m.afi);
        return;
    }
  }

  #onOpen(open: OpenMessage): void {
    if (this.fsm.state !== "OpenSent") {
      this.dispatch({ type: "BGPOpen", holdTime: open.holdTime }); // FSM error in other states
      return;
    }
    const r = negotiate(open, this.#localParams(), this.cfg.asn);
    if (!r.ok) {
      this.lastError = r.reason;
      this.dispatch({ type: "BGPOpenMsgErr", notify: r.notify });
      return;
    }
    this.neg = r.n;
    if (this.#conn) this.#conn.ctx = r.n.ctx;
    this.src.routerId = r.n.peerRouterId;
    const ours = this.#host.gracefulRestart;
    const pgr = r.n.gracefulRestart ? r.n.peerGracefulRestart : undefined;
    this.dispatch({
      type: "BGPOpen",
      holdTime: open.holdTime,
      gr: {
        // RFC 4724 §4.2 helper: the peer's restart time, when both sides announced GR.
        restartTime: pgr?.restartTime,
        // RFC 4724 §4.1: restarting, we defer our advertisement on the first session to each peer.
        deferralTime: ours?.restarting && r.n.gracefulRestart && this.#sentOpens <= 1
          ? ours.deferralTime
          : undefined,
      },
    });
  }

  /** RFC 7606 errors that did not reset the session: counted, the first few logged. */
  #noteUpdateErrors(errs: BgpError[]): void {
    for (const e of errs) {
      this.counters.updateErrors++;
      if (this.counters.updateErrors <= 10) {
        this.#host.log("warning", "bgp malformed UPDATE handled per RFC 7606", {
          peer: this.cfg.address,
          error: e.message,
        });
      }
    }
  }

  #onUpdate(m: UpdateMessage): void {
    const conn = this.#conn;
    const neg = this.neg;
    const { inputs, error } = ribInputs(m, {
      families: neg?.families.map((f) => f.afi) ?? [AFI.IPv4],
      session: neg && conn
        ? {
          peerAs: neg.peerAsn,
          ebgp: neg.ctx.ebgp,
          localAddress: normaliseRemote(conn.conn.localAddr.hostname),
        }
        : undefined,
    });
    if (error) this.#noteUpdateErrors([error]);
    for (const i of inputs) {
      if (i.kind === "end-of-rib") this.#onEndOfRib(i.afi);
      else applyRibInput(this.#host.rib, this.src, i);
    }
  }

  #onEndOfRib(afi: Afi): void {
    this.#host.log("debug", "bgp end-of-rib received", { peer: this.cfg.address, afi });
    const swept = this.#host.rib.sweepStale(this.src, afi);
    if (swept) {
      this.#host.log("info", "bgp stale routes flushed at end-of-rib", { peer: this.cfg.address, swept });
    }
    this.dispatch({ type: "PeerEndOfRib", staleLeft: this.src.staleCount });
    this.#host.scheduleFlush();
  }

  // ---- Established / down ----

  #established(deferExport: boolean): void {
    const conn = this.#conn;
    const local = conn ? normaliseRemote(conn.conn.localAddr.hostname) : undefined;
    const t = this.target;
    const v4 = local && !local.includes(":") ? local : undefined;
    const v6 = local && local.includes(":") && !isLinkLocal6(local) ? local : undefined;
    t.selfV4 = this.cfg.nextHopIpv4 ?? v4;
    t.selfV6 = this.cfg.nextHopIpv6 ?? v6;
    // RFC 2545 §3: on a directly connected IPv6 eBGP session, send our link-local address too.
    t.selfV6LinkLocal = this.cfg.nextHopIpv6LinkLocal ??
      (this.neg?.ctx.ebgp && !this.cfg.multihopTtl && v6 && !this.cfg.nextHopIpv6
        ? linkLocalOfLocalAddress(v6)
        : undefined);
    t.families = this.neg?.families.map((f) => f.afi) ?? [AFI.IPv4];
    this.#host.log("info", "bgp session established", {
      peer: this.cfg.address,
      asn: this.neg?.peerAsn,
      routerId: this.neg?.peerRouterId,
      holdTime: this.fsm.holdTime,
      families: t.families,
    });
    // RFC 4724 §4.1: a restarting speaker defers its advertisement until the peer's End-of-RIB
    // (or the deferral deadline), so it selects from the peer's full table.
    if (!deferExport) this.#beginExport();
  }

  #beginExport(): void {
    if (this.fsm.state !== "Established" || this.target.active) return;
    this.#eorPending = !!this.neg?.peerGracefulRestart;
    this.#host.rib.activate(this.target);
    this.#host.scheduleFlush();
  }

  /** Left Established: the FSM decided from the typed cause whether GR keeps the routes. */
  #down(cause: DownCause, reason: string, routes: "drop" | "stale"): void {
    const rib = this.#host.rib;
    rib.deactivate(this.target);
    this.#eorPending = false;
    if (routes === "stale") {
      // RFC 4724 §4.2 helper: keep the peer's routes, marked stale, until its restart deadline.
      const n = rib.markStale(this.src);
      this.#host.log("info", "bgp peer down, keeping routes as stale (graceful restart)", {
        peer: this.cfg.address,
        routes: n,
        restartTime: this.fsm.grRestartTime,
        reason,
        cause: cause.kind,
      });
    } else {
      this.#host.log("info", "bgp session down", { peer: this.cfg.address, reason });
      rib.dropSource(this.src);
    }
    this.#host.scheduleFlush();
  }

  #sweepStale(): void {
    const swept = this.#host.rib.sweepStale(this.src);
    this.#host.log("info", "bgp restart timer expired, stale routes flushed", {
      peer: this.cfg.address,
      swept,
    });
    this.#host.scheduleFlush();
  }

  /** Drop every route of this peer now (peer removed), including stale ones. */
  release(): void {
    this.#clearTimers();
    this.#host.rib.dropSource(this.src);
    this.#host.rib.removeTarget(this.target);
  }

  // ---- sending ----

  /** Send the RIB's batches for this peer (and End-of-RIB after the initial table). */
  sendBatches(batches: OutBatch[] | undefined): void {
    if (this.fsm.state !== "Established" || !this.#conn) return;
    const ctx = this.#ctx();
    const max = maxLength(ctx);
    const enc = (u: UpdateMessage) => encodeMessage(u, ctx);
    for (const b of batches ?? []) {
      for (const bytes of packBatch(b, enc, max)) {
        this.counters.updatesOut++;
        this.#queue(bytes);
      }
    }
    if (this.#eorPending) {
      this.#eorPending = false;
      for (const afi of this.target.families) {
        this.counters.updatesOut++;
        this.#queue(encodeMessage(endOfRib(afi), ctx));
      }
    }
  }

  get needsFlushCall(): boolean {
    return this.#eorPending;
  }

  #sendRefresh(afi: Afi): void {
    if (!this.target.active) return;
    this.sendBatches(this.#host.rib.refreshBatches(this.target, afi));
  }

  /** Ask the peer to resend its routes (RFC 2918), for every negotiated family. */
  requestRefresh(): boolean {
    if (this.fsm.state !== "Established" || !this.neg?.routeRefresh) return false;
    for (const f of this.neg.families) {
      this.#send({ type: MessageType.RouteRefresh, afi: f.afi, safi: f.safi, subtype: 0 });
    }
    return true;
  }

  #send(m: BgpMessage): void {
    if (!this.#conn) return;
    this.#queue(encodeMessage(m, this.#ctx()));
  }

  #queue(bytes: Uint8Array): void {
    if (this.#conn?.send(bytes)) this.counters.messagesOut++;
  }
}

function hashSeed(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h ^ (Date.now() & 0xffff)) >>> 0;
}

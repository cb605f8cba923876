/**
 * One configured peer's session: the loop that turns socket reads and due timers into FSM events
 * (`fsm.ts`), performs the FSM's actions (connect, send, close), feeds received UPDATEs to the
 * RIB and sends what the RIB exports. Nothing a peer sends can throw out of here: decode errors
 * become the codec's NOTIFICATION and a reset, per RFC 4271 §6 / RFC 7606.
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
import {
  collisionSurvivor,
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
import { endOfRib, isEndOfRib, packBatch } from "./pack.ts";
import { addrBytes, canonicalAddr, isLinkLocal6 } from "./prefix.ts";
import type { RibAttrs } from "./propagate.ts";
import type { OutBatch, Rib, Source, Target } from "./rib.ts";
import type { PeerConfig } from "./config.ts";
import { type BgpConn, connectTcp } from "./transport/mod.ts";
import { checkUpdateForSession, decodeMessage, encodeMessage, frameMessage, maxLength } from "./wire.ts";

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
/** Read buffer of a connection: first size, and the size it grows to under a flood. */
const READ_CHUNK_MIN = 8 * 1024;
const READ_CHUNK_MAX = 256 * 1024;
/** How long one outgoing connection attempt may take. */
const DIAL_TIMEOUT_MS = 10_000;
/** Longest stretch of message processing before yielding to the event loop. */
const DRAIN_SLICE_MS = 20;

/** Strip the IPv4-mapped form an IPv6 listener reports, then canonicalise. */
export function normaliseRemote(a: string): string {
  const s = a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
  return addrBytes(s) ? canonicalAddr(s) : s;
}

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
  #conn: BgpConn | null = null;
  #gen = 0;
  #ctx: CodecContext = defaultCodecContext;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #staleTimer: ReturnType<typeof setTimeout> | undefined;
  #deferTimer: ReturnType<typeof setTimeout> | undefined;
  /** Received bytes not yet processed: #buf[#bufStart, #bufEnd). Grows on demand (idle peers hold little). */
  #buf = new Uint8Array(0);
  #bufStart = 0;
  #bufEnd = 0;
  /** The current connection's write queue; a dropped connection keeps its own until it drains. */
  #writer: Writer | null = null;
  /** The write still finishing on the last dropped connection (its NOTIFICATION), for `stop`. */
  #closing: Promise<void> | null = null;
  #closeAfterWrite = false;
  #eorPending = false;
  #awaitingPeerEor = false;
  #sentOpens = 0;
  #dialAbort: AbortController | null = null;
  /** Whether the current connection is one we dialled (RFC 4271 §6.8 needs the direction). */
  #connOutgoing = false;
  /** Set while taking over a dialled connection on which our OPEN already went out. */
  #openAlreadySent = false;
  /** BFD took the session down: stay in Idle (no dial, no accept) until BFD is Up again. */
  #bfdHeld = false;
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

  start(): void {
    this.#stopped = false;
    this.dispatch({ type: "ManualStart" });
  }

  /** Administrative stop; `graceful` closes without NOTIFICATION so a GR peer keeps our routes. */
  async stop(opts: { graceful?: boolean; notify?: Notify } = {}): Promise<void> {
    this.#stopped = true;
    if (opts.graceful && this.#conn) {
      this.#gen++;
      const c = this.#conn;
      this.#conn = null;
      await this.#writer?.busy;
      this.#writer = null;
      safeClose(c);
      this.fsm = { ...step(this.fsm, { type: "ManualStop" }, this.#now()).peer };
    } else if (opts.notify && this.#conn) {
      this.dispatch({ type: "AutomaticStop", reason: "peer deconfigured", notify: opts.notify });
      this.dispatch({ type: "ManualStop" });
    } else {
      this.dispatch({ type: "ManualStop" });
    }
    await (this.#writer?.busy ?? this.#closing);
    this.#clearTimers();
  }

  /**
   * BFD reports the forwarding path down (RFC 5882 §4.3): take the session down at once with
   * Cease/10 "BFD Down" (RFC 9384) and hold it in Idle, neither dialling nor accepting, until
   * `bfdUp` — re-establishing over a path BFD calls dead would only flap.
   */
  bfdDown(reason: string): void {
    this.#bfdHeld = true;
    if (this.fsm.state !== "Idle") {
      this.dispatch({ type: "AutomaticStop", reason, notify: { code: CEASE, subcode: 10 } });
    }
    this.fsm = { ...this.fsm, idleHoldAt: undefined };
    this.#armTimer();
  }

  /** BFD is Up (again): lift the hold of `bfdDown` and restart at once if the peer is enabled. */
  bfdUp(): void {
    if (!this.#bfdHeld) return;
    this.#bfdHeld = false;
    if (!this.#stopped && this.fsm.state === "Idle" && this.fsm.adminUp) {
      this.dispatch({ type: "AutomaticStart" });
    }
  }

  /** True while BFD holds the session down. */
  get bfdHeld(): boolean {
    return this.#bfdHeld;
  }

  /** Feed one event through the FSM and perform its actions. */
  dispatch(ev: FsmEvent): void {
    if (ev.type === "AutomaticStart" && this.#bfdHeld) {
      // The back-off expired but BFD still says the path is down: wait for bfdUp instead.
      this.fsm = { ...this.fsm, idleHoldAt: undefined };
      this.#armTimer();
      return;
    }
    if (
      ev.type === "ConnectRetryTimerExpires" && this.fsm.state === "Connect" && this.#dialAbort && !this.#conn
    ) {
      // Our dial is still in flight (its own timeout, DIAL_TIMEOUT_MS, bounds it): keep it and only
      // restart the timer. Dropping it for a new socket (§8.2.2) gains nothing (the kernel
      // retransmits the SYN itself) and, with many peers on a busy process whose connect
      // completions arrive late, turns into a storm of abandoned connections that keeps every
      // session from coming up.
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
    clearTimeout(this.#deferTimer);
    this.#timer = undefined;
  }

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
        this.#established();
        return;
      case "down":
        this.#down(a.reason);
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
    let timedOut = false;
    const timeout = setTimeout(async () => {
      // A connection the kernel completed may still wait for this busy event loop to see it:
      // let one turn deliver it before giving up (an abandoned one is a session the peer set up).
      await new Promise((r) => setTimeout(r, 0));
      if (this.#dialAbort !== ac || ac.signal.aborted) return;
      timedOut = true;
      ac.abort(new Error("connect timed out"));
    }, DIAL_TIMEOUT_MS);
    // The dial stays valid while its AbortController is the current one: an incoming connection
    // adopted meanwhile does not cancel it (see `incoming`), a close or a new dial does. Its own
    // timeout is reported as a failed connection.
    const current = () => this.#dialAbort === ac && (timedOut || !ac.signal.aborted);
    connectTcp({
      hostname: this.cfg.address,
      port: this.cfg.port ?? 179,
      localAddress: this.cfg.localAddress,
      password: this.cfg.password,
      ttl: this.cfg.multihopTtl,
      signal: ac.signal,
    }).then(
      (conn) => {
        clearTimeout(timeout);
        if (!current()) {
          safeClose(conn);
          return;
        }
        this.#dialAbort = null;
        const st = this.fsm.state;
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
        clearTimeout(timeout);
        if (!current()) return;
        this.#dialAbort = null;
        if (this.fsm.state !== "Connect") return; // we run on the peer's connection
        this.dispatch({ type: "TcpConnectionFails", reason: `connect: ${errMsg(err)}` });
      },
    );
  }

  /** Make `conn` the session's connection; `outgoing` records who initiated it (§6.8). */
  #adopt(conn: BgpConn, outgoing: boolean, initial?: Uint8Array): void {
    const gen = ++this.#gen;
    this.#resetDrain();
    this.#conn = conn;
    this.#connOutgoing = outgoing;
    this.#writer = { conn, queue: [], busy: null };
    this.#ctx = defaultCodecContext;
    this.#bufStart = this.#bufEnd = 0;
    this.#closeAfterWrite = false;
    if (initial?.length) this.#append(initial);
    this.#readLoop(conn, gen);
  }

  #closeConn(): void {
    this.#dialAbort?.abort();
    this.#dialAbort = null;
    const c = this.#conn;
    this.#gen++;
    this.#resetDrain();
    this.#conn = null;
    // The dropped connection's queue (e.g. the NOTIFICATION just queued) drains on its own
    // writer before the close; whatever is sent next goes to the next connection's writer.
    const w = this.#writer;
    this.#writer = null;
    if (!c) return;
    if (w?.busy && w.conn === c) {
      const done = w.busy.finally(() => safeClose(c));
      this.#closing = done;
    } else safeClose(c);
  }

  /** An incoming connection from this peer's address, handed over by the listener. */
  incoming(conn: BgpConn): void {
    const st = this.fsm.state;
    if (this.#stopped || (!this.fsm.adminUp && st === "Idle")) {
      safeClose(conn);
      return;
    }
    if (this.#bfdHeld) {
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
    if (outgoing) {
      const bytes = encodeMessage(this.#open(), defaultCodecContext);
      let off = 0;
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    }
    const first = await readFirstMessage(conn, 10_000);
    if (!first) throw new Error("no OPEN on the second connection");
    const dec = decodeMessage(first.msg, defaultCodecContext);
    if (!dec.ok || dec.msg.type !== MessageType.Open) throw new Error("first message is not a valid OPEN");
    const open = dec.msg;
    const st = this.fsm.state;
    if (st === "Established") {
      if (!outgoing && this.neg?.gracefulRestart && this.neg.peerGracefulRestart) {
        // RFC 4724 §4.2: a new connection from a GR peer in Established means it restarted.
        this.#host.log("info", "bgp peer restarted (graceful restart)", { peer: this.cfg.address });
        this.dispatch({ type: "TcpConnectionFails", reason: "peer restarted" });
        this.#takeOver(conn, outgoing, open, first.rest);
        return;
      }
      await rejectConn(conn, { code: CEASE, subcode: 7 });
      return;
    }
    if (st !== "OpenSent" && st !== "OpenConfirm") {
      // The state moved on while we read: treat it as a plain new connection with its OPEN.
      if (st === "Idle" || st === "Active" || st === "Connect") {
        if (st === "Idle" && (!this.fsm.adminUp || this.#bfdHeld)) {
          safeClose(conn);
          return;
        }
        this.#takeOver(conn, outgoing, open, first.rest);
        return;
      }
      safeClose(conn);
      return;
    }
    const candidateWins =
      collisionSurvivor(this.#host.routerId, open.routerId, this.#connOutgoing, outgoing) === "candidate";
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
    this.#takeOver(conn, outgoing, open, first.rest);
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

  // ---- reading ----

  #append(b: Uint8Array): void {
    if (this.#bufEnd + b.length > this.#buf.length) {
      const live = this.#bufEnd - this.#bufStart;
      const size = Math.max(this.#buf.length, (live + b.length) * 2, 4096);
      const nb = size > this.#buf.length ? new Uint8Array(size) : this.#buf;
      nb.copyWithin(0, 0, 0);
      nb.set(this.#buf.subarray(this.#bufStart, this.#bufEnd), 0);
      this.#buf = nb;
      this.#bufStart = 0;
      this.#bufEnd = live;
    }
    this.#buf.set(b, this.#bufEnd);
    this.#bufEnd += b.length;
  }

  /**
   * Read a chunk, process it in time slices (`#kickDrain`, yielding between slices so timers and
   * other sessions keep running during a full-table load or a flood), then read the next chunk.
   */
  async #readLoop(conn: BgpConn, gen: number): Promise<void> {
    // Small while the peer sends little (a thousand idle sessions hold 8 KiB each, not 256), grown
    // when a read fills it (a full table arrives in 256 KiB reads).
    let chunk = new Uint8Array(READ_CHUNK_MIN);
    // Process anything that arrived with the connection (collision hand-over).
    if (this.#bufEnd > this.#bufStart) {
      await Promise.resolve();
      if (gen !== this.#gen) return;
      this.#kickDrain(gen);
    }
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(chunk);
      } catch (err) {
        if (gen !== this.#gen) return;
        this.dispatch({ type: "TcpConnectionFails", reason: `read: ${errMsg(err)}` });
        return;
      }
      if (gen !== this.#gen) return;
      if (n === null) {
        // Process what is still buffered before reporting the close.
        await this.#drained();
        if (gen !== this.#gen) return;
        this.dispatch({ type: "TcpConnectionFails", reason: "connection closed by peer" });
        return;
      }
      this.#append(chunk.subarray(0, n));
      if (n === chunk.length && chunk.length < READ_CHUNK_MAX) {
        chunk = new Uint8Array(Math.min(chunk.length * 4, READ_CHUNK_MAX));
      }
      this.#kickDrain(gen);
      // Read on only once the backlog is processed: TCP back-pressure then lets the sender batch
      // (BIRD sends far fuller UPDATEs to a receiver whose window fills than to one that never
      // lets it), while the slices keep timers and other sessions running meanwhile.
      if (this.#draining) await this.#drained();
      if (gen !== this.#gen) return;
      // Back-pressure: let our own writes progress during a flood.
      const w = this.#writer;
      if (w && w.queue.length > 256) await w.busy;
    }
  }

  #draining = false;
  #drainWaiters: Array<() => void> = [];

  #resetDrain(): void {
    this.#draining = false;
    for (const w of this.#drainWaiters.splice(0)) w();
  }

  /** Resolves when the buffer has been processed (or the connection changed). */
  #drained(): Promise<void> {
    if (!this.#draining) return Promise.resolve();
    return new Promise((r) => this.#drainWaiters.push(r));
  }

  #kickDrain(gen: number): void {
    if (this.#draining) return;
    this.#draining = true;
    const slice = () => {
      if (gen !== this.#gen) return; // connection replaced: #resetDrain already cleared the state
      const more = this.#drain(gen, performance.now() + DRAIN_SLICE_MS);
      this.#host.scheduleFlush();
      if (more && gen === this.#gen) {
        setTimeout(slice, 0);
        return;
      }
      this.#draining = false;
      const ws = this.#drainWaiters.splice(0);
      for (const w of ws) w();
    };
    slice();
  }

  /** Process buffered messages until none is complete or `deadline`; true when stopped by the deadline. */
  #drain(gen: number, deadline: number): boolean {
    while (gen === this.#gen) {
      if (performance.now() > deadline) return true;
      const view = this.#buf.subarray(this.#bufStart, this.#bufEnd);
      const f = frameMessage(view, this.#ctx);
      if (f.kind === "need-more") break;
      if (f.kind === "error") {
        this.dispatch({
          type: "BGPHeaderErr",
          notify: { code: f.error.code, subcode: f.error.subcode, data: f.error.data },
        });
        this.lastError = f.error.message;
        return false;
      }
      const msg = view.subarray(0, f.length);
      this.#bufStart += f.length;
      this.counters.messagesIn++;
      try {
        this.#onMessage(msg);
      } catch (err) {
        // Our own bug on peer input: reset the session rather than the process.
        this.#host.log("error", "bgp internal error handling a message", {
          peer: this.cfg.address,
          error: errMsg(err),
        });
        this.dispatch({ type: "AutomaticStop", reason: `internal error: ${errMsg(err)}` });
        return false;
      }
    }
    if (this.#bufStart === this.#bufEnd) this.#bufStart = this.#bufEnd = 0;
    return false;
  }

  #onMessage(bytes: Uint8Array): void {
    const dec = decodeMessage(bytes, this.#ctx);
    if (!dec.ok) {
      const e = dec.error;
      this.lastError = e.message;
      const notify = { code: e.code, subcode: e.subcode, data: e.data };
      if (e.code === ErrorCode.OpenMessage) this.dispatch({ type: "BGPOpenMsgErr", notify });
      else if (e.code === ErrorCode.UpdateMessage) this.dispatch({ type: "UpdateMsgErr", notify });
      else this.dispatch({ type: "BGPHeaderErr", notify });
      return;
    }
    if (dec.errors?.length) this.#noteUpdateErrors(dec.errors.map((e) => e.message));
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
    this.#ctx = r.n.ctx;
    this.src.routerId = r.n.peerRouterId;
    this.dispatch({ type: "BGPOpen", holdTime: open.holdTime });
  }

  /** RFC 7606 errors that did not reset the session: counted, the first few logged. */
  #noteUpdateErrors(msgs: string[]): void {
    for (const msg of msgs) {
      this.counters.updateErrors++;
      if (this.counters.updateErrors <= 10) {
        this.#host.log("warning", "bgp malformed UPDATE handled per RFC 7606", {
          peer: this.cfg.address,
          error: msg,
        });
      }
    }
  }

  #onUpdate(m: UpdateMessage): void {
    const rib = this.#host.rib;
    const conn = this.#conn;
    if (this.neg && conn && !m.treatAsWithdraw) {
      const err = checkUpdateForSession(m, this.neg.peerAsn, this.neg.ctx.ebgp, [
        normaliseRemote(conn.localAddr.hostname),
      ]);
      if (err) {
        this.#noteUpdateErrors([err.message]);
        m = { ...m, treatAsWithdraw: true };
      }
    }
    const fams = this.neg?.families.map((f) => f.afi) ?? [AFI.IPv4];
    const eor = isEndOfRib(m);
    if (eor !== null) {
      this.#onEndOfRib(eor);
      return;
    }
    if (m.treatAsWithdraw) {
      // RFC 7606: every prefix the UPDATE carries is withdrawn.
      rib.withdraw(this.src, [
        ...m.withdrawn,
        ...m.nlri,
        ...(m.mpReach?.nlri ?? []),
        ...(m.mpUnreach?.withdrawn ?? []),
      ]);
      return;
    }
    if (m.withdrawn.length) rib.withdraw(this.src, m.withdrawn);
    if (m.mpUnreach?.withdrawn.length && fams.includes(m.mpUnreach.afi)) {
      rib.withdraw(this.src, m.mpUnreach.withdrawn);
    }
    if (m.nlri.length && fams.includes(AFI.IPv4) && m.attrs.nextHop) {
      const attrs = m.attrs as RibAttrs;
      rib.announce(this.src, m.nlri, attrs);
    }
    const mp = m.mpReach;
    if (mp && mp.nlri.length && fams.includes(mp.afi) && mp.nextHops.length) {
      const { nextHop: _ignored, ...rest } = m.attrs;
      let nh = mp.nextHops[0];
      let ll = mp.nextHops[1];
      // RFC 2545 §3: a link-local-only next hop comes as the global one; keep it as link-local too.
      if (isLinkLocal6(nh) && !ll) ll = nh;
      if (nh === "::" && ll) nh = ll;
      const attrs: RibAttrs = { ...rest, nextHop: nh, ...(ll ? { nextHopLinkLocal: ll } : {}) };
      rib.announce(this.src, mp.nlri, attrs);
    }
  }

  #onEndOfRib(afi: Afi): void {
    this.#host.log("debug", "bgp end-of-rib received", { peer: this.cfg.address, afi });
    const swept = this.#host.rib.sweepStale(this.src, afi);
    if (swept) {
      this.#host.log("info", "bgp stale routes flushed at end-of-rib", { peer: this.cfg.address, swept });
    }
    if (this.src.staleCount === 0) {
      clearTimeout(this.#staleTimer);
      this.#staleTimer = undefined;
    }
    if (this.#awaitingPeerEor) this.#beginExport();
    this.#host.scheduleFlush();
  }

  // ---- Established / down ----

  #established(): void {
    const conn = this.#conn;
    const local = conn ? normaliseRemote(conn.localAddr.hostname) : undefined;
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
    const gr = this.#host.gracefulRestart;
    if (gr?.restarting && this.neg?.gracefulRestart && this.#sentOpens <= 1) {
      // RFC 4724 §4.1: the restarting speaker defers its advertisement until the peer's End-of-RIB
      // (or the deferral timer), so it selects from the peer's full table.
      this.#awaitingPeerEor = true;
      this.#deferTimer = setTimeout(() => this.#beginExport(), gr.deferralTime * 1000);
      return;
    }
    this.#beginExport();
  }

  #beginExport(): void {
    clearTimeout(this.#deferTimer);
    this.#awaitingPeerEor = false;
    if (this.fsm.state !== "Established" || this.target.active) return;
    this.#eorPending = !!this.neg?.peerGracefulRestart;
    this.#host.rib.activate(this.target);
    this.#host.scheduleFlush();
  }

  #down(reason: string): void {
    const rib = this.#host.rib;
    rib.deactivate(this.target);
    clearTimeout(this.#deferTimer);
    this.#awaitingPeerEor = false;
    this.#eorPending = false;
    const pgr = this.neg?.peerGracefulRestart;
    const byNotification = reason.includes("NOTIFICATION") || reason.includes("administratively") ||
      reason.includes("FSM error");
    if (this.neg?.gracefulRestart && pgr && pgr.restartTime > 0 && !byNotification) {
      // RFC 4724 §4.2 helper: keep the peer's routes, marked stale, for its restart time.
      const n = rib.markStale(this.src);
      this.#host.log("info", "bgp peer down, keeping routes as stale (graceful restart)", {
        peer: this.cfg.address,
        routes: n,
        restartTime: pgr.restartTime,
        reason,
      });
      clearTimeout(this.#staleTimer);
      this.#staleTimer = setTimeout(() => {
        this.#staleTimer = undefined;
        const swept = rib.sweepStale(this.src);
        this.#host.log("info", "bgp restart timer expired, stale routes flushed", {
          peer: this.cfg.address,
          swept,
        });
        this.#host.scheduleFlush();
      }, pgr.restartTime * 1000);
    } else {
      this.#host.log("info", "bgp session down", { peer: this.cfg.address, reason });
      rib.dropSource(this.src);
    }
    this.#host.scheduleFlush();
  }

  /** Drop every route of this peer now (peer removed), including stale ones. */
  release(): void {
    clearTimeout(this.#staleTimer);
    this.#staleTimer = undefined;
    this.#clearTimers();
    this.#host.rib.dropSource(this.src);
    this.#host.rib.removeTarget(this.target);
  }

  // ---- sending ----

  /** Send the RIB's batches for this peer (and End-of-RIB after the initial table). */
  sendBatches(batches: OutBatch[] | undefined): void {
    if (this.fsm.state !== "Established" || !this.#conn) return;
    const max = maxLength(this.#ctx);
    const enc = (u: UpdateMessage) => encodeMessage(u, this.#ctx);
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
        this.#queue(encodeMessage(endOfRib(afi), this.#ctx));
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
    this.#queue(encodeMessage(m, this.#ctx));
  }

  #queue(bytes: Uint8Array): void {
    const conn = this.#conn;
    const w = this.#writer;
    if (!conn || !w || w.conn !== conn) return;
    this.counters.messagesOut++;
    w.queue.push(bytes);
    if (!w.busy) w.busy = this.#pump(w);
  }

  async #pump(w: Writer): Promise<void> {
    try {
      while (w.queue.length) {
        // Coalesce queued messages into one write of up to 1 MiB.
        let total = 0, n = 0;
        while (n < w.queue.length && total < 1 << 20) total += w.queue[n++].length;
        const parts = w.queue.splice(0, n);
        const buf = n === 1 ? parts[0] : concat(parts, total);
        let off = 0;
        while (off < buf.length) off += await w.conn.write(buf.subarray(off));
      }
    } catch (err) {
      w.queue.length = 0;
      w.busy = null;
      if (this.#writer === w) {
        this.dispatch({ type: "TcpConnectionFails", reason: `write: ${errMsg(err)}` });
      }
    } finally {
      w.busy = null;
    }
  }
}

/** One connection's outgoing queue and the write loop draining it. */
interface Writer {
  conn: BgpConn;
  queue: Uint8Array[];
  busy: Promise<void> | null;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function safeClose(c: BgpConn): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function hashSeed(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h ^ (Date.now() & 0xffff)) >>> 0;
}

/** Send a NOTIFICATION on a connection we refuse, then close it. */
export async function rejectConn(conn: BgpConn, n: Notify): Promise<void> {
  try {
    const bytes = encodeMessage({
      type: MessageType.Notification,
      code: n.code,
      subcode: n.subcode,
      data: n.data ?? new Uint8Array(),
    }, defaultCodecContext);
    let off = 0;
    while (off < bytes.length) off += await conn.write(bytes.subarray(off));
  } catch {
    // the peer may already be gone
  } finally {
    safeClose(conn);
  }
}

/** Read exactly one message from a fresh connection (collision handling), with a timeout. */
async function readFirstMessage(
  conn: BgpConn,
  timeoutMs: number,
): Promise<{ msg: Uint8Array; rest: Uint8Array } | null> {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(4096);
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(chunk),
      new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), deadline - performance.now())),
    ]);
    clearTimeout(timer);
    if (n === "timeout" || n === null) return null;
    const nb = new Uint8Array(buf.length + n);
    nb.set(buf);
    nb.set(chunk.subarray(0, n), buf.length);
    buf = nb;
    const f = frameMessage(buf, defaultCodecContext);
    if (f.kind === "error") return null;
    if (f.kind === "message") return { msg: buf.subarray(0, f.length), rest: buf.slice(f.length) };
  }
  return null;
}

/**
 * Runs BFD sessions on real sockets: one shared receive socket per local address (the wildcard
 * unless the peer sets one) on the BFD port (3784), one transmit socket per session bound to a
 * source port in 49152–65535 with TTL 255 (RFC 5881 §4), the GTSM check on receipt (TTL must be 255, §5), demultiplexing by
 * Your Discriminator or, while it is 0, by source address (§6.3), and one timer per session at
 * the machine's next deadline. Sessions report Up/Down through callbacks so a BGP session can
 * be torn down the moment its BFD session goes Down.
 *
 * @module
 */
import { UdpSocket } from "../transport/udp.ts";
import { formatIp, parseIp } from "../transport/sockaddr.ts";
import { type BfdSession, type BfdTiming, newSession, nextDeadline, step, validateTiming } from "./fsm.ts";
import { decodeControl, type DiagCode, encodeControl, State, STATE_NAMES } from "./packet.ts";

/** Per-peer BFD options, in the units of kube-router's flags and annotation (milliseconds). */
export interface BfdPeerOptions {
  /** Source address for our packets (default: chosen by routing). */
  localAddress?: string;
  /** UDP port the peer listens on and we receive on; default 3784 (`--bfd-port`). */
  port?: number;
  /** `--bfd-desired-min-tx-interval`, ms, default 1000. */
  desiredMinTxMs?: number;
  /** `--bfd-required-min-rx-interval`, ms, default 1000. */
  requiredMinRxMs?: number;
  /** `--bfd-detection-multiplier`, 1–255, default 3. */
  detectMultiplier?: number;
}

/** A state change of one session. */
export interface BfdStateEvent {
  peer: string;
  from: string;
  to: string;
  /** Local diagnostic code (RFC 5880 §4.1), e.g. 1 = detection time expired. */
  diag: DiagCode;
}

/** What `sessions()` reports. */
export interface BfdSessionStatus {
  peer: string;
  state: string;
  remoteState: string;
  localDiscr: number;
  remoteDiscr: number;
  diag: DiagCode;
  detectionTimeMs: number;
  packetsIn: number;
  packetsOut: number;
  /** Packets for this session dropped by the TTL-255 check. */
  ttlDrops: number;
  upSince?: number;
}

/** Injectable pieces (tests), and logging. */
export interface BfdManagerOptions {
  log?: (
    level: "debug" | "info" | "warning" | "error",
    msg: string,
    fields?: Record<string, unknown>,
  ) => void;
  random?: () => number;
  /** Skip the TTL-255 check (only for tests that cannot produce TTL 255). */
  insecureAcceptAnyTtl?: boolean;
}

interface Entry {
  peer: string;
  port: number;
  local: string;
  session: BfdSession;
  tx: UdpSocket;
  timer?: ReturnType<typeof setTimeout>;
  packetsIn: number;
  packetsOut: number;
  ttlDrops: number;
  upSince?: number;
}

type Listener = (ev: BfdStateEvent) => void;

const now = () => performance.now();

/** Resolves option defaults and validates them, reporting every problem at once. */
export function resolveTiming(o: BfdPeerOptions): BfdTiming {
  const t: BfdTiming = {
    desiredMinTxUs: Math.round((o.desiredMinTxMs ?? 1000) * 1000),
    requiredMinRxUs: Math.round((o.requiredMinRxMs ?? 1000) * 1000),
    detectMult: o.detectMultiplier ?? 3,
  };
  const errs = validateTiming(t);
  if (errs.length) throw new RangeError(`bfd: invalid options: ${errs.join("; ")}`);
  return t;
}

/** The set of BFD sessions of one agent. */
export class BfdManager {
  #entries = new Map<string, Entry>();
  #byDiscr = new Map<number, Entry>();
  #rx = new Map<string, UdpSocket>();
  #listeners = new Set<Listener>();
  #opts: BfdManagerOptions;
  #random: () => number;
  #closed = false;

  constructor(opts: BfdManagerOptions = {}) {
    this.#opts = opts;
    this.#random = opts.random ?? Math.random;
  }

  /**
   * Starts a session with `peer` (an IP address). Throws RangeError for bad options and
   * TransportError when a socket cannot be bound. Adding an existing peer updates its timing in
   * place, or restarts the session when its port or local address changed.
   */
  add(peer: string, o: BfdPeerOptions = {}): void {
    if (this.#closed) throw new Error("bfd: manager is closed");
    const a = parseIp(peer);
    if (!a) throw new RangeError(`bfd: peer ${JSON.stringify(peer)} is not an IPv4 or IPv6 address`);
    const key = formatIp(a);
    const timing = resolveTiming(o);
    const port = o.port ?? 3784;
    const local = o.localAddress ?? (a.family === 4 ? "0.0.0.0" : "::");
    const existing = this.#entries.get(key);
    if (existing && existing.port === port && existing.local === local) {
      // Same sockets: a timing change goes through the machine (Poll Sequence when Up).
      this.#apply(existing, step(existing.session, { kind: "configure", timing }, now(), this.#random));
      return;
    }
    if (existing) this.remove(key);
    this.#rxSocket(local, port);
    const tx = this.#txSocket(local);
    let discr = 0;
    while (discr === 0 || this.#byDiscr.has(discr)) {
      discr = (Math.floor(this.#random() * 0xffffffff) >>> 0) || 1;
    }
    const e: Entry = {
      peer: key,
      port,
      local,
      tx,
      session: newSession(timing, discr, now()),
      packetsIn: 0,
      packetsOut: 0,
      ttlDrops: 0,
    };
    this.#entries.set(key, e);
    this.#byDiscr.set(discr, e);
    this.#log("info", "bfd session added", { peer: key, port, discr, sourcePort: tx.addr.port });
    this.#arm(e);
  }

  /** Stops the session with `peer`, telling it AdminDown first (RFC 5880 §6.8.16). */
  remove(peer: string): void {
    const a = parseIp(peer);
    const e = a ? this.#entries.get(formatIp(a)) : undefined;
    if (!e) return;
    const r = step(e.session, { kind: "admin-down" }, now(), this.#random);
    for (const act of r.actions) if (act.kind === "send") this.#send(e, encodeControl(act.packet));
    clearTimeout(e.timer);
    e.tx.close();
    this.#entries.delete(e.peer);
    this.#byDiscr.delete(e.session.localDiscr);
    if (this.#entries.size === 0) this.#closeRx();
  }

  /** Subscribes to every state change; returns the unsubscribe function. */
  onStateChange(cb: Listener): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  /** Called when a session reaches Up. */
  onUp(cb: (peer: string) => void): () => void {
    return this.onStateChange((ev) => ev.to === "Up" && cb(ev.peer));
  }

  /** Called when a session leaves Up (detection time expired, peer down, admin down). */
  onDown(cb: (peer: string, diag: DiagCode) => void): () => void {
    return this.onStateChange((ev) => ev.from === "Up" && cb(ev.peer, ev.diag));
  }

  /** The state of one session, or undefined. */
  state(peer: string): string | undefined {
    const a = parseIp(peer);
    const e = a ? this.#entries.get(formatIp(a)) : undefined;
    return e ? STATE_NAMES[e.session.state] : undefined;
  }

  /** Status of every session. */
  sessions(): BfdSessionStatus[] {
    return [...this.#entries.values()].map((e) => ({
      peer: e.peer,
      state: STATE_NAMES[e.session.state],
      remoteState: STATE_NAMES[e.session.remoteState],
      localDiscr: e.session.localDiscr,
      remoteDiscr: e.session.remoteDiscr,
      diag: e.session.localDiag,
      detectionTimeMs: e.session.remoteDetectMult *
        Math.max(e.session.rxInUseUs, e.session.remoteDesiredMinTxUs) / 1000,
      packetsIn: e.packetsIn,
      packetsOut: e.packetsOut,
      ttlDrops: e.ttlDrops,
      upSince: e.upSince,
    }));
  }

  /** Removes every session (sending AdminDown) and closes all sockets. */
  close(): void {
    if (this.#closed) return;
    for (const peer of [...this.#entries.keys()]) this.remove(peer);
    this.#closeRx();
    this.#closed = true;
  }

  #closeRx(): void {
    for (const s of this.#rx.values()) s.close();
    this.#rx.clear();
  }

  #txSocket(local: string): UdpSocket {
    // RFC 5881 §4: source port 49152–65535, one per session, TTL 255.
    let last: unknown;
    for (let i = 0; i < 64; i++) {
      const port = 49152 + Math.floor(this.#random() * 16384);
      try {
        return UdpSocket.bind({ hostname: local, port, ttl: 255 });
      } catch (err) {
        last = err;
        if ((err as { code?: string }).code !== "EADDRINUSE") throw err;
      }
    }
    throw new Error(`bfd: no free source port in 49152–65535 on ${local}`, { cause: last });
  }

  /** One receive socket per (local address, port); the wildcard when no local address is set. */
  #rxSocket(local: string, port: number): void {
    const key = `${local}/${port}`;
    if (this.#rx.has(key)) return;
    const sock = UdpSocket.bind({
      hostname: local,
      port,
      recvTtl: true,
      v6Only: true,
      reuseAddr: true,
    });
    this.#rx.set(key, sock);
    this.#receiveLoop(sock);
  }

  async #receiveLoop(sock: UdpSocket): Promise<void> {
    for (;;) {
      let dg;
      try {
        dg = await sock.recv();
      } catch (err) {
        if (err instanceof Deno.errors.Interrupted || err instanceof Deno.errors.BadResource) return;
        this.#log("error", "bfd receive failed", { error: String(err) });
        return;
      }
      const r = decodeControl(dg.data);
      if (!r.ok) {
        this.#log("debug", "bfd packet discarded", { from: dg.hostname, reason: r.reason });
        continue;
      }
      const p = r.packet;
      const e = p.yourDiscr !== 0 ? this.#byDiscr.get(p.yourDiscr) : this.#entries.get(dg.hostname);
      if (!e || e.peer !== dg.hostname) {
        this.#log("debug", "bfd packet for no session", { from: dg.hostname, yourDiscr: p.yourDiscr });
        continue;
      }
      if (dg.ttl !== 255 && !this.#opts.insecureAcceptAnyTtl) {
        // RFC 5881 §5 (GTSM): a single-hop packet that crossed a router is not from our neighbour.
        e.ttlDrops++;
        continue;
      }
      e.packetsIn++;
      this.#apply(e, step(e.session, { kind: "rx", packet: p }, now(), this.#random));
    }
  }

  #apply(e: Entry, r: ReturnType<typeof step>): void {
    e.session = r.session;
    for (const a of r.actions) {
      if (a.kind === "send") this.#send(e, encodeControl(a.packet));
      else {
        if (a.to === State.Up) e.upSince = Date.now();
        else if (a.from === State.Up) e.upSince = undefined;
        const ev: BfdStateEvent = {
          peer: e.peer,
          from: STATE_NAMES[a.from],
          to: STATE_NAMES[a.to],
          diag: a.diag,
        };
        this.#log(a.to === State.Up || a.from === State.Up ? "info" : "debug", "bfd session state", {
          ...ev,
        });
        for (const l of this.#listeners) {
          try {
            l(ev);
          } catch (err) {
            this.#log("error", "bfd listener threw", { peer: e.peer, error: String(err) });
          }
        }
      }
    }
    if (this.#entries.get(e.peer) === e) this.#arm(e);
  }

  #send(e: Entry, bytes: Uint8Array): void {
    try {
      if (e.tx.sendTo(bytes, e.peer, e.port)) e.packetsOut++;
    } catch (err) {
      // ENETUNREACH and friends while a link is down: the detection timer handles it.
      this.#log("debug", "bfd send failed", { peer: e.peer, error: String(err) });
    }
  }

  #arm(e: Entry): void {
    clearTimeout(e.timer);
    const delay = Math.max(0, nextDeadline(e.session) - now());
    e.timer = setTimeout(() => {
      if (this.#entries.get(e.peer) !== e) return;
      this.#apply(e, step(e.session, { kind: "timer" }, now(), this.#random));
    }, delay);
  }

  #log(level: "debug" | "info" | "warning" | "error", msg: string, fields?: Record<string, unknown>): void {
    this.#opts.log?.(level, msg, fields);
  }
}

/**
 * `BgpSpeaker`: the public face of the library (exported by `mod.ts`). Owns the RIB,
 * the shared listening sockets and one `PeerSession` per configured peer; coalesces RIB flushes
 * so a burst of UPDATEs is exported in one pass.
 *
 * @module
 */

import { AFI, type Afi, type PathAttributes, type Prefix, SAFI } from "./codec/types.ts";
import {
  configError,
  type LogFn,
  type PeerConfig,
  type SpeakerConfig,
  validatePeerConfig,
  validateSpeakerConfig,
} from "./config.ts";
import { CeaseSubcode } from "./codec/errors.ts";
import { normaliseRemote, rejectConn } from "./connect.ts";
import type { FsmState } from "./fsm.ts";
import { canonicalAddr, parsePrefix, SLOPPY_PREFIX } from "./prefix.ts";
import type { RibAttrs } from "./propagate.ts";
import { type BestPathListener, Rib, type Route, type Source } from "./rib.ts";
import { PeerSession, type SessionHost } from "./session.ts";
import { type BgpListener, listenTcp } from "./transport/mod.ts";
import { BfdManager, type BfdSessionStatus } from "./bfd/manager.ts";
import { bfdOptionsFor } from "./bfd/peer.ts";

/** A peer's status as `peers()` reports it. */
export interface PeerStatus {
  address: string;
  asn: number;
  state: FsmState;
  uptimeMs: number;
  prefixesReceived: number;
  prefixesAccepted: number;
  prefixesAdvertised: number;
  messagesIn: number;
  messagesOut: number;
  updatesIn: number;
  updatesOut: number;
  /** Malformed UPDATEs handled without a reset (RFC 7606 treat-as-withdraw / attribute discard). */
  updateErrors: number;
  lastError?: string;
  description?: string;
  routerId?: string;
  holdTime?: number;
  families?: Afi[];
  /** (added) State of the peer's BFD session (Up/Down/Init/AdminDown) when BFD is enabled for it. */
  bfd?: string;
}

const noLog: LogFn = () => {};

/** Attributes a caller may give to `originate`. */
export type OriginateAttrs = Partial<PathAttributes> & { nextHop?: string; nextHopLinkLocal?: string };

/** The embedded BGP speaker. */
export class BgpSpeaker {
  readonly #cfg: SpeakerConfig;
  readonly #rib: Rib;
  readonly #local: Source;
  readonly #peers = new Map<string, PeerSession>();
  readonly #listeners: BgpListener[] = [];
  readonly #log: LogFn;
  readonly #host: SessionHost;
  #running = false;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** Created on the first peer with `bfd.enabled` (its sockets need `--allow-ffi`). */
  #bfd: BfdManager | null = null;

  constructor(cfg: SpeakerConfig) {
    const problems = validateSpeakerConfig(cfg);
    if (problems.length) throw configError(problems);
    this.#cfg = cfg;
    this.#log = cfg.log ?? noLog;
    this.#rib = new Rib({ asn: cfg.asn, routerId: cfg.routerId, clusterId: cfg.clusterId ?? cfg.routerId });
    this.#local = this.#rib.newSource({
      local: true,
      ebgp: false,
      asn: cfg.asn,
      routerId: cfg.routerId,
      address: "",
      rrClient: false,
    });
    const gr = cfg.gracefulRestart;
    this.#host = {
      rib: this.#rib,
      asn: cfg.asn,
      routerId: cfg.routerId,
      gracefulRestart: gr
        ? { restartTime: gr.restartTime, deferralTime: gr.deferralTime, restarting: !!gr.restarting }
        : undefined,
      log: this.#log,
      scheduleFlush: () => this.#scheduleFlush(),
      stateChanged: () => {},
    };
  }

  /** Open the listening sockets and start every configured peer. */
  start(): Promise<void> {
    if (this.#running) return Promise.resolve();
    const listen = this.#cfg.listen === undefined ? { addresses: ["0.0.0.0"], port: 179 } : this.#cfg.listen;
    if (listen) {
      const passwords: Record<string, string> = {};
      for (const s of this.#peers.values()) if (s.cfg.password) passwords[s.cfg.address] = s.cfg.password;
      for (const a of listen.addresses) {
        const l = listenTcp({ hostname: a, port: listen.port, passwords });
        this.#listeners.push(l);
        this.#acceptLoop(l);
        this.#log("info", "bgp listening", { address: l.addr.hostname, port: l.addr.port });
      }
    }
    this.#running = true;
    for (const s of this.#peers.values()) {
      s.start();
      this.#syncBfd(s);
    }
    return Promise.resolve();
  }

  /** The listening sockets' addresses (port 0 in the config picks a free one). */
  get listenAddrs(): Array<{ hostname: string; port: number }> {
    return this.#listeners.map((l) => l.addr);
  }

  async #acceptLoop(l: BgpListener): Promise<void> {
    try {
      for await (const conn of l) {
        const from = normaliseRemote(conn.remoteAddr.hostname);
        const s = this.#peers.get(from);
        if (!s || !this.#running) {
          this.#log("info", "bgp connection from unknown address refused", { from });
          rejectConn(conn, { code: 6, subcode: CeaseSubcode.ConnectionRejected });
          continue;
        }
        s.incoming(conn);
      }
    } catch (err) {
      if (this.#running) this.#log("error", "bgp listener failed", { error: String(err) });
    }
  }

  /**
   * Stop every session and close the listeners; final (create a new speaker to run again).
   * `graceful`: close the TCP connections without a NOTIFICATION so peers that negotiated
   * graceful restart keep our routes (RFC 4724).
   */
  async stop(opts: { graceful?: boolean } = {}): Promise<void> {
    this.#running = false;
    for (const l of this.#listeners) l.close();
    this.#listeners.length = 0;
    clearTimeout(this.#flushTimer);
    await Promise.all([...this.#peers.values()].map((s) => s.stop({ graceful: opts.graceful })));
    for (const s of this.#peers.values()) s.release();
    this.#bfd?.close(); // AdminDown to every BFD peer (RFC 5882 §3.2: not a path failure)
    this.#bfd = null;
    this.#flush();
  }

  /** Add a peer at run time (started at once if the speaker runs). */
  addPeer(p: PeerConfig): void {
    const problems = validatePeerConfig(p);
    if (problems.length) throw configError(problems);
    const address = canonicalAddr(p.address);
    if (this.#peers.has(address)) {
      throw configError([`bgp peer ${JSON.stringify(address)}: already configured`]);
    }
    const cfg = { ...p, address };
    const ebgp = p.asn !== this.#cfg.asn;
    const families = (p.families ?? [{ afi: AFI.IPv4, safi: SAFI.Unicast }]).map((f) => f.afi);
    const src = this.#rib.newSource({
      local: false,
      ebgp,
      asn: p.asn,
      routerId: "0.0.0.0",
      address,
      rrClient: !!p.routeReflectorClient,
    }, p.importPolicy);
    const target = this.#rib.newTarget(
      {
        address,
        asn: p.asn,
        ebgp,
        rrClient: !!p.routeReflectorClient,
        nextHopSelf: !!p.nextHopSelf,
      },
      families,
      p.exportPolicy,
    );
    const s = new PeerSession(this.#host, cfg, src, target);
    this.#peers.set(address, s);
    if (p.password) { for (const l of this.#listeners) l.setPassword(address, p.password); }
    if (this.#running) {
      s.start();
      this.#syncBfd(s);
    }
  }

  /**
   * Create, update or remove the peer's BFD session to match `cfg.bfd` (RFC 5882). A BFD
   * session that leaves Up takes the BGP session down at once and holds it down until BFD is
   * Up again (`PeerSession.bfdDown`/`bfdUp`). BGP does not wait for BFD to come up first: a
   * peer that runs no BFD still peers, it only loses the fast failure detection.
   */
  #syncBfd(s: PeerSession): void {
    const o = bfdOptionsFor(s.cfg);
    if (!o) {
      this.#bfd?.remove(s.cfg.address);
      s.bfdUp();
      return;
    }
    try {
      this.#bfdManager().add(s.cfg.address, o);
    } catch (err) {
      // E.g. no --allow-ffi, or the port is taken: BGP runs on without BFD, the error is visible.
      s.lastError = `bfd: ${err instanceof Error ? err.message : String(err)}`;
      this.#log("error", "bgp peer bfd session could not be started", {
        peer: s.cfg.address,
        error: s.lastError,
      });
    }
  }

  #bfdManager(): BfdManager {
    if (this.#bfd) return this.#bfd;
    const bfd = new BfdManager({ log: this.#log });
    bfd.onStateChange((ev) => {
      const s = this.#peers.get(canonicalAddr(ev.peer));
      if (!s || !bfdOptionsFor(s.cfg)) return;
      // Our own AdminDown (peer removed) and the peer's AdminDown (its BFD was disabled) are not
      // path failures: RFC 5882 §3.2 says the client session must not be taken down for them.
      const remoteAdminDown = bfd.sessions().find((b) => b.peer === ev.peer)?.remoteState === "AdminDown";
      if (ev.from === "Up" && ev.to === "Down" && !remoteAdminDown) {
        this.#log("info", "bgp peer bfd down, taking the session down", {
          peer: s.cfg.address,
          diag: ev.diag,
        });
        s.bfdDown(`BFD session down (diagnostic ${ev.diag})`);
      } else if (ev.to === "Up") {
        s.bfdUp();
      }
    });
    this.#bfd = bfd;
    return bfd;
  }

  /** The BFD sessions the speaker runs for its peers (empty when no peer enables BFD). */
  bfdSessions(): BfdSessionStatus[] {
    return this.#bfd?.sessions() ?? [];
  }

  /**
   * Change a peer. Policy-only changes apply in place (re-export to the peer, route refresh from
   * it); anything else resets the session.
   */
  updatePeer(p: PeerConfig): void {
    const address = canonicalAddr(p.address);
    const s = this.#peers.get(address);
    if (!s) throw configError([`bgp peer ${JSON.stringify(address)}: not configured`]);
    const problems = validatePeerConfig(p);
    if (problems.length) throw configError(problems);
    // BFD settings change in place too: the BFD session is updated, the BGP session kept.
    const { importPolicy: _i, exportPolicy: _e, description: _d, bfd: _b, ...rest } = { ...p, address };
    const { importPolicy: _i2, exportPolicy: _e2, description: _d2, bfd: _b2, ...old } = s.cfg;
    if (JSON.stringify(sortKeys(rest)) === JSON.stringify(sortKeys(old))) {
      const bfdChanged = JSON.stringify(sortKeys(p.bfd ?? {})) !== JSON.stringify(sortKeys(s.cfg.bfd ?? {}));
      s.cfg = { ...p, address };
      if (bfdChanged && this.#running) this.#syncBfd(s);
      if (s.src.importPolicy !== p.importPolicy) {
        s.src.importPolicy = p.importPolicy;
        s.requestRefresh();
      }
      if (s.target.exportPolicy !== p.exportPolicy) {
        s.target.exportPolicy = p.exportPolicy;
        if (s.target.active) this.#rib.reexport(s.target);
      }
      this.#scheduleFlush();
      return;
    }
    // Anything else (AS, address family, timers, transport) needs a new session.
    this.removePeer(address).then(() => this.addPeer(p)).catch((err) =>
      this.#log("error", "bgp peer re-creation failed", { peer: address, error: String(err) })
    );
  }

  /** Remove a peer: Cease/Peer De-configured, its routes withdrawn from everyone. */
  async removePeer(address: string): Promise<void> {
    const a = canonicalAddr(address);
    const s = this.#peers.get(a);
    if (!s) return;
    this.#peers.delete(a);
    await s.stop({ notify: { code: 6, subcode: CeaseSubcode.PeerDeconfigured } });
    s.release();
    this.#bfd?.remove(a);
    for (const l of this.#listeners) {
      if (s.cfg.password) l.setPassword(a, null);
    }
    this.#scheduleFlush();
  }

  /** Originate (or change) a prefix from this speaker. Without `nextHop`, peers get our session address. */
  originate(prefix: Prefix | string, attrs: OriginateAttrs = {}): void {
    const p = typeof prefix === "string" ? parsePrefix(prefix, SLOPPY_PREFIX) : prefix;
    if (!p) throw configError([`bgp originate: prefix ${JSON.stringify(prefix)} is not addr/len`]);
    const a: RibAttrs = { origin: 0, asPath: [], ...attrs, nextHop: attrs.nextHop ?? "" };
    this.#rib.announce(this.#local, [p], a);
    this.#scheduleFlush();
  }

  /** Withdraw a prefix this speaker originated. */
  withdraw(prefix: Prefix | string): void {
    const p = typeof prefix === "string" ? parsePrefix(prefix, SLOPPY_PREFIX) : prefix;
    if (!p) throw configError([`bgp withdraw: prefix ${JSON.stringify(prefix)} is not addr/len`]);
    this.#rib.withdraw(this.#local, [p]);
    this.#scheduleFlush();
  }

  /** Subscribe to best-path changes; returns the unsubscribe function. */
  onBestPathChange(cb: BestPathListener): () => void {
    return this.#rib.onBestPathChange(cb);
  }

  /** Ask a peer to resend its routes (ROUTE-REFRESH). False when not Established or not supported. */
  refresh(address: string): boolean {
    return this.#peers.get(canonicalAddr(address))?.requestRefresh() ?? false;
  }

  /**
   * Bring a session down at once from outside the protocol (BFD reported the path down, RFC 5882):
   * NOTIFICATION Cease and a reset; the session restarts after its back-off.
   */
  peerDown(address: string, reason: string): void {
    const s = this.#peers.get(canonicalAddr(address));
    if (!s) return;
    s.dispatch({ type: "AutomaticStop", reason });
  }

  peers(): PeerStatus[] {
    const now = performance.now();
    return [...this.#peers.values()].map((s) => {
      const st: PeerStatus = {
        address: s.cfg.address,
        asn: s.cfg.asn,
        state: s.state,
        uptimeMs: s.fsm.establishedAt !== undefined ? Math.round(now - s.fsm.establishedAt) : 0,
        prefixesReceived: s.src.count + s.src.rejected,
        prefixesAccepted: s.src.count,
        prefixesAdvertised: s.target.adjOut.size,
        messagesIn: s.counters.messagesIn,
        messagesOut: s.counters.messagesOut,
        updatesIn: s.counters.updatesIn,
        updatesOut: s.counters.updatesOut,
        updateErrors: s.counters.updateErrors,
      };
      if (s.lastError) st.lastError = s.lastError;
      if (this.#bfd && bfdOptionsFor(s.cfg)) st.bfd = this.#bfd.state(s.cfg.address) ?? "none";
      if (s.cfg.description) st.description = s.cfg.description;
      if (s.neg) {
        st.routerId = s.neg.peerRouterId;
        st.holdTime = s.fsm.holdTime;
        st.families = s.neg.families.map((f) => f.afi);
      }
      return st;
    });
  }

  /** Loc-RIB: the best route of every prefix. */
  locRib(): Route[] {
    return [...this.#rib.bestRoutes()];
  }

  /** Number of prefixes in Loc-RIB (cheap; for polling). */
  get locRibSize(): number {
    return this.#rib.size;
  }

  /** The best route for one prefix, or null. */
  bestRoute(prefix: Prefix | string): Route | null {
    const p = typeof prefix === "string" ? parsePrefix(prefix, SLOPPY_PREFIX) : prefix;
    return p ? this.#rib.best(p) : null;
  }

  adjRibIn(address: string): Route[] {
    const s = this.#peers.get(canonicalAddr(address));
    return s ? [...this.#rib.sourceRoutes(s.src)] : [];
  }

  adjRibOut(address: string): Route[] {
    const s = this.#peers.get(canonicalAddr(address));
    return s ? [...this.#rib.targetRoutes(s.target)] : [];
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flush();
    }, 0);
  }

  #flush(): void {
    if (!this.#rib.pending && ![...this.#peers.values()].some((s) => s.needsFlushCall)) return;
    const out = this.#rib.flush();
    for (const s of this.#peers.values()) {
      const b = out.get(s.target);
      if (b || s.needsFlushCall) s.sendBatches(b);
    }
  }
}

function sortKeys(o: object): unknown {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== undefined).sort(([a], [b]) => a < b ? -1 : 1),
  );
}

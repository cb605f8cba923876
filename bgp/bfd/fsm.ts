/**
 * The BFD session state machine, RFC 5880 §6.8 (asynchronous mode, no demand, no echo), as a
 * pure transition: `step(session, event, now, random) → { session, actions }`. Timers are
 * deadlines on the session (milliseconds on the caller's clock), so tests drive it with a fake
 * clock and the runner only sleeps until `nextDeadline()`.
 *
 * @module
 */
import { type ControlPacket, Diag, type DiagCode, type SessionState, State } from "./packet.ts";

/** Per-session timing parameters (what the operator configures), intervals in microseconds. */
export interface BfdTiming {
  /** bfd.DesiredMinTxInterval while Up. */
  desiredMinTxUs: number;
  /** bfd.RequiredMinRxInterval. */
  requiredMinRxUs: number;
  /** bfd.DetectMult (1–255). */
  detectMult: number;
}

/** RFC 5880 §6.8.3: while not Up, the advertised transmit interval is at least one second. */
export const SLOW_TX_US = 1_000_000;

/** The state variables of §6.8.1 plus the deadlines that drive transmission and detection. */
export interface BfdSession {
  readonly timing: BfdTiming;
  readonly state: SessionState;
  readonly remoteState: SessionState;
  readonly localDiscr: number;
  readonly remoteDiscr: number;
  readonly localDiag: DiagCode;
  /** Last Required Min RX Interval from the peer (initially 1 µs, §6.8.1). */
  readonly remoteMinRxUs: number;
  /** Last Desired Min TX Interval from the peer (0 until heard). */
  readonly remoteDesiredMinTxUs: number;
  readonly remoteDetectMult: number;
  /** The Desired Min TX we advertise now (slow while not Up). */
  readonly advertisedTxUs: number;
  /** The Desired Min TX in use for our own pacing (lags an increase until the poll ends). */
  readonly txInUseUs: number;
  /** The Required Min RX in use for the detection time (lags a decrease until the poll ends). */
  readonly rxInUseUs: number;
  /** A Poll Sequence is in progress: periodic packets carry P until a packet with F arrives. */
  readonly pollActive: boolean;
  /** When the last packet was sent (ms), for re-pacing when the peer's rate changes. */
  readonly lastTx: number;
  /** When the next periodic packet is due (ms). */
  readonly nextTx: number;
  /** When the session is declared down if nothing arrives (ms), null when not armed. */
  readonly detectAt: number | null;
}

/** Inputs to the machine. `rx` packets have passed `decodeControl` and the session lookup. */
export type BfdEvent =
  | { kind: "rx"; packet: ControlPacket }
  | { kind: "timer" }
  | { kind: "admin-down" }
  | { kind: "admin-up" }
  | { kind: "configure"; timing: BfdTiming };

/** What the runner must do after a step. */
export type BfdAction =
  | { kind: "send"; packet: ControlPacket }
  | { kind: "state"; from: SessionState; to: SessionState; diag: DiagCode };

/** Result of one transition. */
export interface BfdStep {
  session: BfdSession;
  actions: BfdAction[];
}

/** Validates operator timing; returns every problem at once (empty when fine). */
export function validateTiming(t: BfdTiming): string[] {
  const errs: string[] = [];
  const intervalOk = (v: number) => Number.isInteger(v) && v >= 1 && v <= 0xffffffff;
  if (!intervalOk(t.desiredMinTxUs)) {
    errs.push(`desiredMinTx is ${t.desiredMinTxUs} µs; accepted: 1 µs to 4294 s`);
  }
  if (!Number.isInteger(t.requiredMinRxUs) || t.requiredMinRxUs < 0 || t.requiredMinRxUs > 0xffffffff) {
    errs.push(`requiredMinRx is ${t.requiredMinRxUs} µs; accepted: 0 to 4294 s`);
  }
  if (!Number.isInteger(t.detectMult) || t.detectMult < 1 || t.detectMult > 255) {
    errs.push(`detectMultiplier is ${t.detectMult}; accepted: 1–255`);
  }
  return errs;
}

/** A new session in Down (§6.8.1 initial values), with its first packet due at `now`. */
export function newSession(timing: BfdTiming, localDiscr: number, now: number): BfdSession {
  if (localDiscr === 0 || localDiscr > 0xffffffff) throw new RangeError(`local discriminator ${localDiscr}`);
  const slow = Math.max(timing.desiredMinTxUs, SLOW_TX_US);
  return {
    timing,
    state: State.Down,
    remoteState: State.Down,
    localDiscr,
    remoteDiscr: 0,
    localDiag: Diag.None,
    remoteMinRxUs: 1,
    remoteDesiredMinTxUs: 0,
    remoteDetectMult: 0,
    advertisedTxUs: slow,
    txInUseUs: slow,
    rxInUseUs: timing.requiredMinRxUs,
    pollActive: false,
    lastTx: -Infinity,
    nextTx: now,
    detectAt: null,
  };
}

/** The earliest deadline the runner must wake up for. */
export function nextDeadline(s: BfdSession): number {
  return Math.min(s.nextTx, s.detectAt ?? Infinity);
}

/** The detection time in µs (§6.8.4, asynchronous mode): remote multiplier × agreed interval. */
export function detectionTimeUs(s: BfdSession): number {
  return s.remoteDetectMult * Math.max(s.rxInUseUs, s.remoteDesiredMinTxUs);
}

/** The periodic transmit interval before jitter (§6.8.7): the slower of ours and what the peer can take. */
export function txIntervalUs(s: BfdSession): number {
  return Math.max(s.txInUseUs, s.remoteMinRxUs);
}

/** Applies §6.8.7 jitter: 75–100% of the interval, or 75–90% when DetectMult is 1. */
export function jitter(intervalUs: number, detectMult: number, random: () => number): number {
  const max = detectMult === 1 ? 0.9 : 1;
  return (intervalUs * (max - (max - 0.75) * random())) / 1000;
}

function packetOf(s: BfdSession, final: boolean): ControlPacket {
  return {
    version: 1,
    diag: s.localDiag,
    state: s.state,
    poll: s.pollActive && !final,
    final,
    cpi: false,
    auth: false,
    demand: false,
    multipoint: false,
    detectMult: s.timing.detectMult,
    myDiscr: s.localDiscr,
    yourDiscr: s.remoteDiscr,
    desiredMinTxUs: s.advertisedTxUs,
    requiredMinRxUs: s.timing.requiredMinRxUs,
    requiredMinEchoRxUs: 0,
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Changes the session state, setting the advertised interval the RFC requires for it. */
function enterState(s: Mutable<BfdSession>, to: SessionState, diag: DiagCode, actions: BfdAction[]): void {
  const from = s.state;
  if (from === to) return;
  s.state = to;
  s.localDiag = diag;
  if (to === State.Up) {
    // Leaving the 1 s floor: a change of DesiredMinTx while Up needs a Poll Sequence (§6.8.3).
    setAdvertisedTx(s, s.timing.desiredMinTxUs);
  } else {
    s.advertisedTxUs = Math.max(s.timing.desiredMinTxUs, SLOW_TX_US);
    s.txInUseUs = s.advertisedTxUs;
    s.pollActive = false;
  }
  actions.push({ kind: "state", from, to, diag });
}

function setAdvertisedTx(s: Mutable<BfdSession>, us: number): void {
  if (s.advertisedTxUs === us) return;
  const increase = us > s.txInUseUs;
  s.advertisedTxUs = us;
  if (s.state === State.Up) {
    s.pollActive = true;
    // An increase only takes effect once the peer acknowledged it (§6.8.3); a decrease at once.
    if (!increase) s.txInUseUs = us;
  } else {
    s.txInUseUs = us;
  }
}

function schedule(s: Mutable<BfdSession>, now: number, random: () => number): void {
  s.nextTx = now + jitter(txIntervalUs(s), s.timing.detectMult, random);
}

function send(
  s: Mutable<BfdSession>,
  now: number,
  final: boolean,
  actions: BfdAction[],
  random: () => number,
): void {
  actions.push({ kind: "send", packet: packetOf(s, final) });
  s.lastTx = now;
  schedule(s, now, random);
}

/** One transition of the machine. Never throws for any packet. */
export function step(
  session: BfdSession,
  ev: BfdEvent,
  now: number,
  random: () => number = Math.random,
): BfdStep {
  const s: Mutable<BfdSession> = { ...session };
  const actions: BfdAction[] = [];
  switch (ev.kind) {
    case "timer": {
      if (s.detectAt !== null && now >= s.detectAt) {
        s.detectAt = null;
        s.remoteDiscr = 0;
        s.remoteState = State.Down;
        s.remoteMinRxUs = 1;
        s.remoteDesiredMinTxUs = 0;
        if (s.state === State.Init || s.state === State.Up) {
          enterState(s, State.Down, Diag.ControlDetectionTimeExpired, actions);
          send(s, now, false, actions, random);
        }
      }
      // §6.8.7: no periodic packets while the peer's Required Min RX is 0.
      if (now >= s.nextTx) {
        if (s.remoteMinRxUs === 0) schedule(s, now, random);
        else send(s, now, false, actions, random);
      }
      break;
    }
    case "rx": {
      const p = ev.packet;
      if (s.state === State.AdminDown) break;
      if (p.final && s.pollActive) {
        s.pollActive = false;
        s.txInUseUs = s.advertisedTxUs;
        s.rxInUseUs = s.timing.requiredMinRxUs;
      }
      const oldRemoteMinRx = s.remoteMinRxUs;
      s.remoteDiscr = p.myDiscr;
      s.remoteState = p.state;
      s.remoteMinRxUs = p.requiredMinRxUs;
      s.remoteDesiredMinTxUs = p.desiredMinTxUs;
      s.remoteDetectMult = p.detectMult;
      const before = s.state;
      if (p.state === State.AdminDown) {
        if (s.state !== State.Down) enterState(s, State.Down, Diag.NeighborSignaledSessionDown, actions);
      } else if (s.state === State.Down) {
        if (p.state === State.Down) enterState(s, State.Init, Diag.None, actions);
        else if (p.state === State.Init) enterState(s, State.Up, Diag.None, actions);
      } else if (s.state === State.Init) {
        if (p.state === State.Init || p.state === State.Up) enterState(s, State.Up, Diag.None, actions);
      } else if (s.state === State.Up) {
        if (p.state === State.Down) enterState(s, State.Down, Diag.NeighborSignaledSessionDown, actions);
      }
      s.detectAt = p.state === State.AdminDown ? null : now + detectionTimeUs(s) / 1000;
      if (p.poll || s.state !== before) {
        // Answer a Poll with Final at once (§6.8.6), and tell the peer about our new state promptly.
        send(s, now, p.poll, actions, random);
      } else if (s.remoteMinRxUs !== oldRemoteMinRx && s.lastTx > -Infinity) {
        // The peer changed the rate it accepts: pace the next packet from the last one sent.
        s.nextTx = s.lastTx + jitter(txIntervalUs(s), s.timing.detectMult, random);
      }
      break;
    }
    case "admin-down": {
      if (s.state === State.AdminDown) break;
      enterState(s, State.AdminDown, Diag.AdministrativelyDown, actions);
      s.detectAt = null;
      send(s, now, false, actions, random);
      break;
    }
    case "admin-up": {
      if (s.state !== State.AdminDown) break;
      enterState(s, State.Down, Diag.None, actions);
      s.remoteDiscr = 0;
      send(s, now, false, actions, random);
      break;
    }
    case "configure": {
      s.timing = ev.timing;
      const tx = s.state === State.Up
        ? ev.timing.desiredMinTxUs
        : Math.max(ev.timing.desiredMinTxUs, SLOW_TX_US);
      setAdvertisedTx(s, tx);
      if (ev.timing.requiredMinRxUs !== s.rxInUseUs) {
        // A larger Required Min RX is safe at once; a smaller one waits for the poll (§6.8.3).
        if (s.state === State.Up) s.pollActive = true;
        if (s.state !== State.Up || ev.timing.requiredMinRxUs > s.rxInUseUs) {
          s.rxInUseUs = ev.timing.requiredMinRxUs;
        }
      }
      if (s.pollActive) send(s, now, false, actions, random);
      break;
    }
  }
  return { session: s, actions };
}

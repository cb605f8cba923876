/**
 * The BFD Control packet (RFC 5880 §4.1) without authentication, and the reception checks of
 * §6.8.6 that do not need session state. Pure: bytes in, a typed packet or a reason out.
 *
 * ```
 *  0                   1                   2                   3
 * |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
 * |                       My Discriminator                        |
 * |                      Your Discriminator                       |
 * |                    Desired Min TX Interval                    |
 * |                   Required Min RX Interval                    |
 * |                 Required Min Echo RX Interval                 |
 * ```
 *
 * @module
 */

/** bfd.SessionState values as carried in the Sta field. */
export const State = { AdminDown: 0, Down: 1, Init: 2, Up: 3 } as const;
export type SessionState = typeof State[keyof typeof State];

/** Human names of the states (for logs, CLI output). */
export const STATE_NAMES: Record<SessionState, string> = {
  0: "AdminDown",
  1: "Down",
  2: "Init",
  3: "Up",
};

/** Diagnostic codes (RFC 5880 §4.1). */
export const Diag = {
  None: 0,
  ControlDetectionTimeExpired: 1,
  EchoFunctionFailed: 2,
  NeighborSignaledSessionDown: 3,
  ForwardingPlaneReset: 4,
  PathDown: 5,
  ConcatenatedPathDown: 6,
  AdministrativelyDown: 7,
  ReverseConcatenatedPathDown: 8,
} as const;
export type DiagCode = number;

/** A decoded Control packet; intervals in microseconds as on the wire. */
export interface ControlPacket {
  version: number;
  diag: DiagCode;
  state: SessionState;
  poll: boolean;
  final: boolean;
  cpi: boolean;
  auth: boolean;
  demand: boolean;
  multipoint: boolean;
  detectMult: number;
  myDiscr: number;
  yourDiscr: number;
  desiredMinTxUs: number;
  requiredMinRxUs: number;
  requiredMinEchoRxUs: number;
}

/** Length of a Control packet without authentication. */
export const CONTROL_LEN = 24;

/** Encodes a Control packet (no authentication section). */
export function encodeControl(
  p: Omit<ControlPacket, "version" | "length"> & { version?: number },
): Uint8Array {
  const b = new Uint8Array(CONTROL_LEN);
  const dv = new DataView(b.buffer);
  b[0] = ((p.version ?? 1) << 5) | (p.diag & 0x1f);
  b[1] = (p.state << 6) | (p.poll ? 0x20 : 0) | (p.final ? 0x10 : 0) | (p.cpi ? 0x08 : 0) |
    (p.auth ? 0x04 : 0) | (p.demand ? 0x02 : 0) | (p.multipoint ? 0x01 : 0);
  b[2] = p.detectMult;
  b[3] = CONTROL_LEN;
  dv.setUint32(4, p.myDiscr >>> 0);
  dv.setUint32(8, p.yourDiscr >>> 0);
  dv.setUint32(12, p.desiredMinTxUs >>> 0);
  dv.setUint32(16, p.requiredMinRxUs >>> 0);
  dv.setUint32(20, p.requiredMinEchoRxUs >>> 0);
  return b;
}

/** Why a received packet was discarded (§6.8.6), for counters and debug logs. */
export type DiscardReason =
  | "short"
  | "version"
  | "length"
  | "detect-mult-zero"
  | "multipoint"
  | "my-discr-zero"
  | "your-discr-zero-not-down"
  | "auth-unsupported";

/** Result of decoding: a packet, or the reason it must be discarded. */
export type DecodeResult = { ok: true; packet: ControlPacket } | { ok: false; reason: DiscardReason };

/**
 * Decodes and applies the stateless checks of RFC 5880 §6.8.6. We run no authentication, so a
 * packet with the A bit is discarded (the RFC's "A bit set and no authentication in use").
 * The session lookup by Your Discriminator is the caller's (it needs the session table).
 */
export function decodeControl(bytes: Uint8Array): DecodeResult {
  if (bytes.length < CONTROL_LEN) return { ok: false, reason: "short" };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = bytes[0] >> 5;
  if (version !== 1) return { ok: false, reason: "version" };
  const flags = bytes[1];
  const auth = (flags & 0x04) !== 0;
  const length = bytes[3];
  if (length < (auth ? 26 : CONTROL_LEN) || length > bytes.length) return { ok: false, reason: "length" };
  const packet: ControlPacket = {
    version,
    diag: bytes[0] & 0x1f,
    state: (flags >> 6) as SessionState,
    poll: (flags & 0x20) !== 0,
    final: (flags & 0x10) !== 0,
    cpi: (flags & 0x08) !== 0,
    auth,
    demand: (flags & 0x02) !== 0,
    multipoint: (flags & 0x01) !== 0,
    detectMult: bytes[2],
    myDiscr: dv.getUint32(4),
    yourDiscr: dv.getUint32(8),
    desiredMinTxUs: dv.getUint32(12),
    requiredMinRxUs: dv.getUint32(16),
    requiredMinEchoRxUs: dv.getUint32(20),
  };
  if (packet.detectMult === 0) return { ok: false, reason: "detect-mult-zero" };
  if (packet.multipoint) return { ok: false, reason: "multipoint" };
  if (packet.myDiscr === 0) return { ok: false, reason: "my-discr-zero" };
  if (packet.yourDiscr === 0 && packet.state !== State.Down && packet.state !== State.AdminDown) {
    return { ok: false, reason: "your-discr-zero-not-down" };
  }
  if (auth) return { ok: false, reason: "auth-unsupported" };
  return { ok: true, packet };
}

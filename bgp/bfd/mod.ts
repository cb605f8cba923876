/**
 * BFD (RFC 5880 asynchronous mode, RFC 5881 single hop) for the BGP speaker: `BfdManager` runs
 * sessions per peer address and reports Up/Down so a BGP session can be dropped at once.
 * Sockets go through libc (FFI), so this needs `--allow-ffi`.
 *
 * @module
 */
export {
  BfdManager,
  type BfdManagerOptions,
  type BfdPeerOptions,
  type BfdSessionStatus,
  type BfdStateEvent,
  resolveTiming,
} from "./manager.ts";
export { bfdOptionsFor, type BfdPeerConfig, bindBfdToBgp, syncPeerBfd } from "./peer.ts";
export { type BfdSession, type BfdTiming, newSession, step } from "./fsm.ts";
export { type ControlPacket, decodeControl, Diag, encodeControl, State } from "./packet.ts";

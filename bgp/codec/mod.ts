/**
 * The BGP message codec: pure `decode(bytes, ctx)` / `encode(msg, ctx)` for OPEN, UPDATE,
 * NOTIFICATION, KEEPALIVE and ROUTE-REFRESH, errors as `BgpError` values with RFC 7606 handling,
 * stream framing (`MessageReader`, `frame`), OPEN checks against configuration and capability
 * negotiation (`validateOpen`, `negotiate`), and NLRI / address helpers.
 *
 * @module
 */

export * from "./types.ts";
export {
  BgpError,
  type BgpErrorOptions,
  CeaseSubcode,
  type ErrorHandling,
  HeaderSubcode,
  OpenSubcode,
  RouteRefreshSubcode,
  strongerHandling,
  UpdateSubcode,
} from "./errors.ts";
export {
  decode,
  type DecodeOptions,
  type DecodeResult,
  encode,
  MessageReader,
  notificationFor,
} from "./message.ts";
export {
  frame,
  type FrameResult,
  HEADER_LENGTH,
  MAX_EXTENDED_MESSAGE_LENGTH,
  MAX_MESSAGE_LENGTH,
  maxMessageLength,
} from "./header.ts";
export { AttributeCache } from "./attr_cache.ts";
export type { AttrSetResult } from "./attr_set.ts";
export { AS_TRANS, AttrCode, AttrFlag } from "./attributes.ts";
export { CapabilityCode } from "./capabilities.ts";
export { BGP_VERSION } from "./open.ts";
export { RouteRefreshSubtype } from "./route_refresh.ts";
export { ceaseWithCommunication, shutdownCommunication } from "./notification.ts";
export { asPathLength } from "./as_path.ts";
export {
  decodePrefixes,
  encodePrefix,
  encodePrefixes,
  formatPrefix,
  maxPrefixLength,
  parsePrefix,
  type PrefixTextOptions,
  prefixWireLength,
  SLOPPY_PREFIX,
} from "./nlri.ts";
export { ByteWriter } from "./bytes.ts";
export { canonicalIp, formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "./ip.ts";
export { fromHex, toHex } from "./bytes.ts";
export {
  checkUpdate,
  negotiate,
  type Negotiated,
  type OpenExpectation,
  peerAsOf,
  type UpdateExpectation,
  validateOpen,
} from "./validate.ts";

/**
 * The embedded BGP speaker as a library: `BgpSpeaker` plus the types of its API. No Kubernetes in
 * here; the routing controller configures peers, originates prefixes and subscribes to best paths.
 *
 * @module
 */

export { BgpSpeaker, type OriginateAttrs, type PeerStatus } from "./speaker.ts";
export { ConfigError, type LogFn, type PeerConfig, type SpeakerConfig } from "./config.ts";
export type { BestPathChange, BestPathListener, Route } from "./rib.ts";
export { type RibKey, ribKeyText } from "./rib.ts";
export type { Policy, PolicyActions, PolicyMatch, PolicyStatement, PrefixMatch } from "./policy.ts";
export type { FsmState } from "./fsm.ts";
export { canonicalAddr, formatPrefix, parsePrefix, prefixContains, SLOPPY_PREFIX } from "./prefix.ts";
export type { PrefixTextOptions } from "./codec/nlri.ts";
export {
  AFI,
  type Afi,
  type AfiSafi,
  type LargeCommunity,
  type PathAttributes,
  type Prefix,
  SAFI,
  WellKnownCommunity,
} from "./codec/types.ts";

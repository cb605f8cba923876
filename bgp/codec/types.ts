/**
 * Typed BGP messages and path attributes: the contract between the codec (bytes ⇄ these
 * types), the FSM/session (which only looks at message kinds and OPEN parameters) and the
 * RIBs and policy (which look at `PathAttributes`).
 *
 * Addresses are kept as canonical strings ("10.0.0.1", "2001:db8::1") because the RIB keys
 * and the kernel layer both want strings; prefixes as `{ afi, addr, len }` with `addr` being
 * the network address with host bits cleared.
 *
 * @module
 */

/** Address family identifiers (RFC 4760, IANA). */
export const AFI = { IPv4: 1, IPv6: 2 } as const;
export type Afi = typeof AFI[keyof typeof AFI];
/** Subsequent address family identifiers; only unicast is used. */
export const SAFI = { Unicast: 1 } as const;
export type Safi = typeof SAFI[keyof typeof SAFI];

/** An address family as negotiated with the MP capability. */
export interface AfiSafi {
  afi: Afi;
  safi: Safi;
}

/** An IP prefix; `addr` has its host bits cleared. */
export interface Prefix {
  afi: Afi;
  addr: string;
  len: number;
}

export const MessageType = {
  Open: 1,
  Update: 2,
  Notification: 3,
  Keepalive: 4,
  RouteRefresh: 5,
} as const;
export type MessageTypeCode = typeof MessageType[keyof typeof MessageType];

/** Capabilities we understand; anything else is kept raw so it can be logged. */
export type Capability =
  | { code: 1; kind: "multiprotocol"; afi: Afi; safi: Safi }
  | { code: 2; kind: "route-refresh" }
  | { code: 6; kind: "extended-message" }
  | {
    code: 64;
    kind: "graceful-restart";
    /** R bit: the sender has restarted. */
    restarting: boolean;
    /** N bit (RFC 8538), kept for round-trips. */
    notification: boolean;
    /** Restart time in seconds (12 bits). */
    restartTime: number;
    /** Per-AFI/SAFI entries; `forwardingPreserved` is the F bit. */
    families: Array<AfiSafi & { forwardingPreserved: boolean }>;
  }
  | { code: 65; kind: "four-octet-as"; asn: number }
  | { code: number; kind: "unknown"; value: Uint8Array };

export interface OpenMessage {
  type: typeof MessageType.Open;
  version: number;
  /** The 2-octet My AS field (AS_TRANS 23456 when the real ASN needs 4 octets). */
  myAs: number;
  holdTime: number;
  /** BGP identifier as dotted quad. */
  routerId: string;
  capabilities: Capability[];
  /**
   * Set by the decoder only when the received OPEN grouped its capabilities differently from what
   * `encode` writes by default (all in one Capabilities parameter, RFC 9072 form only when needed),
   * so that a decoded OPEN re-encodes byte-exact. Senders leave it unset.
   */
  layout?: OpenLayout;
}

/** How a received OPEN laid out its optional parameters (see `OpenMessage.layout`). */
export interface OpenLayout {
  /** Number of capabilities in each Capabilities optional parameter, in order. */
  capabilitiesPerParameter: number[];
  /** The RFC 9072 extended optional parameters length form was used. */
  extendedLength: boolean;
}

export const AsPathSegmentType = {
  AsSet: 1,
  AsSequence: 2,
  AsConfedSequence: 3,
  AsConfedSet: 4,
} as const;

export interface AsPathSegment {
  type: typeof AsPathSegmentType[keyof typeof AsPathSegmentType];
  asns: number[];
}

export const Origin = { Igp: 0, Egp: 1, Incomplete: 2 } as const;
export type OriginCode = typeof Origin[keyof typeof Origin];

/** RFC 1997 well-known communities. */
export const WellKnownCommunity = {
  NoExport: 0xffffff01,
  NoAdvertise: 0xffffff02,
  NoExportSubconfed: 0xffffff03,
  NoPeer: 0xffffff04,
  GracefulShutdown: 0xffff0000,
  LlgrStale: 0xffff0006,
} as const;

/** RFC 8092 large community. */
export interface LargeCommunity {
  global: number;
  local1: number;
  local2: number;
}

/** An attribute we do not interpret, kept to be passed on (optional transitive) or logged. */
export interface RawAttribute {
  flags: number;
  code: number;
  value: Uint8Array;
}

/**
 * Path attributes of one UPDATE, decoded. AS_PATH is always the full 4-octet path: the codec
 * merges AS4_PATH into AS_PATH on receipt from a 2-octet speaker (RFC 6793 §4.2.3) and splits
 * it again on send.
 */
export interface PathAttributes {
  origin?: OriginCode;
  asPath?: AsPathSegment[];
  /** IPv4 NEXT_HOP attribute (type 3). */
  nextHop?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: { asn: number; address: string };
  communities?: number[];
  largeCommunities?: LargeCommunity[];
  originatorId?: string;
  clusterList?: string[];
  /** Optional transitive attributes we do not understand, passed on with the partial bit set. */
  unknown?: RawAttribute[];
}

/** MP_REACH_NLRI (RFC 4760), decoded. For IPv6, `nextHops` holds the global and, if present, the link-local next hop. */
export interface MpReach {
  afi: Afi;
  safi: Safi;
  nextHops: string[];
  nlri: Prefix[];
}

export interface MpUnreach {
  afi: Afi;
  safi: Safi;
  withdrawn: Prefix[];
}

export interface UpdateMessage {
  type: typeof MessageType.Update;
  /** IPv4 withdrawn routes from the classic field. */
  withdrawn: Prefix[];
  attrs: PathAttributes;
  /** IPv4 NLRI from the classic field. */
  nlri: Prefix[];
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  /**
   * Set by the decoder when RFC 7606 says the UPDATE must be treated as a withdraw: every
   * prefix it carries is to be withdrawn and its attributes ignored.
   */
  treatAsWithdraw?: boolean;
  /** Attributes the decoder discarded per RFC 7606 ("attribute discard"), for logging. */
  discarded?: number[];
  /**
   * Set by the decoder only when the received attributes were ordered or flagged differently from
   * what `encode` writes by default (MP_REACH, MP_UNREACH, then ascending type code; canonical
   * flags; extended length only above 255 octets), so that a decoded UPDATE re-encodes
   * byte-exact. Senders leave it unset.
   */
  layout?: AttributeLayout;
}

/** Order and flag octets of a received UPDATE's attributes (see `UpdateMessage.layout`). */
export interface AttributeLayout {
  /** Attribute type codes in wire order (first occurrence of each). */
  codes: number[];
  /** The flag octet of each, parallel to `codes`. */
  flags: number[];
}

export interface NotificationMessage {
  type: typeof MessageType.Notification;
  code: number;
  subcode: number;
  data: Uint8Array;
}

export interface KeepaliveMessage {
  type: typeof MessageType.Keepalive;
}

/** RFC 2918 ROUTE-REFRESH (and RFC 7313 subtypes in `subtype`). */
export interface RouteRefreshMessage {
  type: typeof MessageType.RouteRefresh;
  afi: Afi;
  safi: Safi;
  subtype: number;
}

export type BgpMessage =
  | OpenMessage
  | UpdateMessage
  | NotificationMessage
  | KeepaliveMessage
  | RouteRefreshMessage;

/** NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313, RFC 4486 subcodes for Cease). */
export const ErrorCode = {
  MessageHeader: 1,
  OpenMessage: 2,
  UpdateMessage: 3,
  HoldTimerExpired: 4,
  FsmError: 5,
  Cease: 6,
  RouteRefresh: 7,
} as const;

/**
 * Negotiated session options the codec needs; travels in every encode/decode call, never in a
 * global. Before OPEN is exchanged, use `defaultCodecContext`.
 */
export interface CodecContext {
  /** Both sides announced the 4-octet AS capability. */
  fourOctetAs: boolean;
  /** Both sides announced extended messages (RFC 8654): max length 65535 instead of 4096. */
  extendedMessages: boolean;
  /** Families negotiated; used to validate MP_REACH and for RFC 7606 decisions. */
  families: AfiSafi[];
  /** Whether the peer is external: affects which attributes are malformed (RFC 7606 §7). */
  ebgp: boolean;
}

export const defaultCodecContext: CodecContext = {
  fourOctetAs: false,
  extendedMessages: false,
  families: [{ afi: AFI.IPv4, safi: SAFI.Unicast }],
  ebgp: true,
};

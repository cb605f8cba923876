/**
 * `BgpError`: a decode failure as a value, carrying what the NOTIFICATION needs (code, subcode,
 * data) and the RFC 7606 handling level. Modelled on GoBGP's error contract.
 *
 * @module
 */

import { ErrorCode } from "./types.ts";

/**
 * How a received error must be handled (RFC 7606 §2): `session-reset` sends a NOTIFICATION and
 * closes; `treat-as-withdraw` withdraws every prefix in the UPDATE; `attribute-discard` drops the
 * offending attribute and keeps processing.
 */
export type ErrorHandling = "session-reset" | "treat-as-withdraw" | "attribute-discard";

const RANK: Record<ErrorHandling, number> = {
  "attribute-discard": 1,
  "treat-as-withdraw": 2,
  "session-reset": 3,
};

/** The stronger of two handling levels (RFC 7606 §3: when several errors occur, the strongest wins). */
export function strongerHandling(a: ErrorHandling, b: ErrorHandling): ErrorHandling {
  return RANK[a] >= RANK[b] ? a : b;
}

/** Message Header Error subcodes (RFC 4271 §4.5). */
export const HeaderSubcode = {
  ConnectionNotSynchronized: 1,
  BadMessageLength: 2,
  BadMessageType: 3,
} as const;

/** OPEN Message Error subcodes (RFC 4271 §4.5, RFC 5492). */
export const OpenSubcode = {
  Unspecific: 0,
  UnsupportedVersionNumber: 1,
  BadPeerAs: 2,
  BadBgpIdentifier: 3,
  UnsupportedOptionalParameter: 4,
  UnacceptableHoldTime: 6,
  UnsupportedCapability: 7,
} as const;

/** UPDATE Message Error subcodes (RFC 4271 §4.5). */
export const UpdateSubcode = {
  MalformedAttributeList: 1,
  UnrecognizedWellKnownAttribute: 2,
  MissingWellKnownAttribute: 3,
  AttributeFlagsError: 4,
  AttributeLengthError: 5,
  InvalidOriginAttribute: 6,
  InvalidNextHopAttribute: 8,
  OptionalAttributeError: 9,
  InvalidNetworkField: 10,
  MalformedAsPath: 11,
} as const;

/** ROUTE-REFRESH Message Error subcodes (RFC 7313 §5). */
export const RouteRefreshSubcode = { InvalidMessageLength: 1 } as const;

/** Cease subcodes (RFC 4486, RFC 8203, RFC 9384). */
export const CeaseSubcode = {
  MaximumPrefixesReached: 1,
  AdministrativeShutdown: 2,
  PeerDeconfigured: 3,
  AdministrativeReset: 4,
  ConnectionRejected: 5,
  OtherConfigurationChange: 6,
  ConnectionCollisionResolution: 7,
  OutOfResources: 8,
  HardReset: 9,
  BfdDown: 10,
} as const;

const EMPTY = new Uint8Array(0);

/** Options of a `BgpError`. */
export interface BgpErrorOptions {
  /** NOTIFICATION data (default empty). */
  data?: Uint8Array;
  /** RFC 7606 handling (default `session-reset`). */
  handling?: ErrorHandling;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * A protocol error found in bytes a peer sent, or in an OPEN checked against configuration.
 * `code`/`subcode`/`data` are what the NOTIFICATION carries when `handling` is `session-reset`.
 */
export class BgpError extends Error {
  /** NOTIFICATION error code (RFC 4271 §4.5). */
  readonly code: number;
  /** NOTIFICATION error subcode. */
  readonly subcode: number;
  /** NOTIFICATION data (e.g. the bad length, type or attribute). */
  readonly data: Uint8Array;
  /** RFC 7606 handling level. */
  readonly handling: ErrorHandling;

  /** An error with the given NOTIFICATION code/subcode and a one-line message. */
  constructor(code: number, subcode: number, message: string, opts: BgpErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "BgpError";
    this.code = code;
    this.subcode = subcode;
    this.data = opts.data ?? EMPTY;
    this.handling = opts.handling ?? "session-reset";
  }
}

/** Shorthand for a Message Header Error. */
export function headerError(subcode: number, message: string, data?: Uint8Array): BgpError {
  return new BgpError(ErrorCode.MessageHeader, subcode, message, { data });
}

/** Shorthand for an OPEN Message Error. */
export function openError(subcode: number, message: string, data?: Uint8Array): BgpError {
  return new BgpError(ErrorCode.OpenMessage, subcode, message, { data });
}

/** Shorthand for an UPDATE Message Error with the given RFC 7606 handling. */
export function updateError(
  subcode: number,
  handling: ErrorHandling,
  message: string,
  data?: Uint8Array,
): BgpError {
  return new BgpError(ErrorCode.UpdateMessage, subcode, message, { data, handling });
}

/**
 * fast-check arbitraries of valid BGP messages (canonical: what `encode` writes decodes back to
 * an equal object), shared by the property tests and the benchmark.
 *
 * @module
 */

import fc from "fast-check";
import { formatIPv6 } from "./ip.ts";
import { parsePrefix } from "./nlri.ts";
import type {
  AsPathSegment,
  Capability,
  CodecContext,
  LargeCommunity,
  OpenMessage,
  PathAttributes,
  Prefix,
  RawAttribute,
  UpdateMessage,
} from "./types.ts";

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const byte = fc.integer({ min: 0, max: 255 });

/** Any IPv4 address text. */
export const ipv4 = fc.tuple(byte, byte, byte, byte).map((a) => a.join("."));
/** A unicast host IPv4 address (valid as NEXT_HOP). */
export const hostIpv4 = fc.tuple(fc.integer({ min: 1, max: 223 }).filter((x) => x !== 127), byte, byte, byte)
  .map((a) => a.join("."));
/** A non-zero IPv4 address (router id). */
export const routerId = fc.tuple(fc.integer({ min: 1, max: 255 }), byte, byte, byte).map((a) => a.join("."));
/** Any IPv6 address in canonical text. */
export const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => formatIPv6(b));

/** An IPv4 prefix with host bits cleared. */
export const prefix4: fc.Arbitrary<Prefix> = fc.tuple(ipv4, fc.integer({ min: 0, max: 32 }))
  .map(([a, l]) => parsePrefix(`${a}/${l}`)!);
/** An IPv6 prefix with host bits cleared. */
export const prefix6: fc.Arbitrary<Prefix> = fc.tuple(ipv6, fc.integer({ min: 0, max: 128 }))
  .map(([a, l]) => parsePrefix(`${a}/${l}`)!);

const asn = fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 0xffffffff }));

function segment(types: number[], asns = asn): fc.Arbitrary<AsPathSegment> {
  return fc.record({
    type: fc.constantFrom(...types) as fc.Arbitrary<AsPathSegment["type"]>,
    asns: fc.array(asns, { minLength: 1, maxLength: 12 }),
  }, { noNullPrototype: true });
}

/**
 * An AS path; confederation segments only at the front and only for iBGP, with 2-octet member
 * ASNs on 2-octet sessions (AS4_PATH cannot carry confederation segments, RFC 6793 §3).
 */
export function asPath(ebgp: boolean, fourOctetAs = true): fc.Arbitrary<AsPathSegment[]> {
  const main = fc.array(segment([1, 2]), { maxLength: 4 });
  if (ebgp) return main;
  return fc.tuple(
    fc.array(segment([3, 4], fourOctetAs ? asn : fc.integer({ min: 1, max: 65535 })), { maxLength: 2 }),
    main,
  ).map(([c, m]) => [...c, ...m]);
}

const knownCodes = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 17, 18, 32]);
/** An unknown optional transitive attribute as the decoder stores it (Partial set: what we re-send). */
export const rawAttr: fc.Arbitrary<RawAttribute> = fc.record({
  flags: fc.constant(0xe0),
  code: fc.integer({ min: 11, max: 255 }).filter((c) => !knownCodes.has(c)),
  value: fc.uint8Array({ maxLength: 300 }),
}, { noNullPrototype: true });

const largeCommunity: fc.Arbitrary<LargeCommunity> = fc.record({ global: u32, local1: u32, local2: u32 }, {
  noNullPrototype: true,
});

/** Path attributes valid for the session `ctx` (with ORIGIN, AS_PATH and NEXT_HOP present). */
export function pathAttributes(ctx: CodecContext): fc.Arbitrary<PathAttributes> {
  const aggAsn = ctx.fourOctetAs ? asn.filter((a) => a !== 0) : fc.integer({ min: 65536, max: 0xffffffff });
  return fc.record(
    {
      origin: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>,
      asPath: asPath(ctx.ebgp, ctx.fourOctetAs),
      nextHop: hostIpv4,
      med: u32,
      localPref: u32,
      atomicAggregate: fc.constant(true),
      aggregator: fc.record({ asn: aggAsn, address: ipv4 }, { noNullPrototype: true }),
      communities: fc.array(u32, { minLength: 1, maxLength: 8 }),
      largeCommunities: fc.array(largeCommunity, { minLength: 1, maxLength: 4 }),
      originatorId: ipv4,
      clusterList: fc.array(ipv4, { minLength: 1, maxLength: 4 }),
      unknown: fc.uniqueArray(rawAttr, { minLength: 1, maxLength: 2, selector: (r) => r.code }),
    },
    { requiredKeys: ["origin", "asPath", "nextHop"], noNullPrototype: true },
  ).map((a) => {
    if (ctx.ebgp) {
      delete a.localPref;
      delete a.originatorId;
      delete a.clusterList;
    }
    if (a.unknown) a.unknown.sort((x, y) => x.code - y.code);
    return a;
  });
}

/** A canonical UPDATE for `ctx` (no layout, no decoder-only fields). */
export function updateMessage(ctx: CodecContext): fc.Arbitrary<UpdateMessage> {
  return fc.record(
    {
      withdrawn: fc.array(prefix4, { maxLength: 10 }),
      nlri: fc.array(prefix4, { maxLength: 10 }),
      attrs: pathAttributes(ctx),
      mpReach: fc.record({
        afi: fc.constant(2 as const),
        safi: fc.constant(1 as const),
        nextHops: fc.oneof(fc.tuple(ipv6), fc.tuple(ipv6, ipv6)),
        nlri: fc.array(prefix6, { maxLength: 10 }),
      }, { noNullPrototype: true }),
      mpUnreach: fc.oneof(
        fc.record({
          afi: fc.constant(2 as const),
          safi: fc.constant(1 as const),
          withdrawn: fc.array(prefix6, { maxLength: 10 }),
        }, { noNullPrototype: true }),
        fc.record({
          afi: fc.constant(1 as const),
          safi: fc.constant(1 as const),
          withdrawn: fc.array(prefix4, { maxLength: 10 }),
        }, { noNullPrototype: true }),
      ),
    },
    { requiredKeys: ["withdrawn", "nlri", "attrs"], noNullPrototype: true },
  ).map((m) => ({ type: 2 as const, ...m }) as UpdateMessage);
}

const knownCaps = new Set([1, 2, 6, 64, 65]);
/** A capability in the form the decoder produces. */
export const capability: fc.Arbitrary<Capability> = fc.oneof(
  fc.record({
    code: fc.constant(1 as const),
    kind: fc.constant("multiprotocol" as const),
    afi: fc.constantFrom(1 as const, 2 as const),
    safi: fc.constant(1 as const),
  }, { noNullPrototype: true }),
  fc.constant({ code: 2 as const, kind: "route-refresh" as const }),
  fc.constant({ code: 6 as const, kind: "extended-message" as const }),
  fc.record({
    code: fc.constant(64 as const),
    kind: fc.constant("graceful-restart" as const),
    restarting: fc.boolean(),
    notification: fc.boolean(),
    restartTime: fc.integer({ min: 0, max: 4095 }),
    families: fc.array(
      fc.record({
        afi: fc.constantFrom(1 as const, 2 as const),
        safi: fc.constant(1 as const),
        forwardingPreserved: fc.boolean(),
      }, { noNullPrototype: true }),
      { maxLength: 3 },
    ),
  }, { noNullPrototype: true }),
  fc.record({
    code: fc.constant(65 as const),
    kind: fc.constant("four-octet-as" as const),
    asn: fc.integer({ min: 1, max: 0xffffffff }),
  }, { noNullPrototype: true }),
  fc.record({
    code: fc.integer({ min: 0, max: 255 }).filter((c) => !knownCaps.has(c)),
    kind: fc.constant("unknown" as const),
    value: fc.uint8Array({ maxLength: 24 }),
  }, { noNullPrototype: true }),
);

/** A valid OPEN. */
export const openMessage: fc.Arbitrary<OpenMessage> = fc.record({
  type: fc.constant(1 as const),
  version: fc.constant(4),
  myAs: fc.integer({ min: 1, max: 65535 }),
  holdTime: fc.oneof(fc.constant(0), fc.integer({ min: 3, max: 65535 })),
  routerId,
  capabilities: fc.array(capability, { maxLength: 12 }),
}, { noNullPrototype: true });

/** Any codec context. */
export const codecContext: fc.Arbitrary<CodecContext> = fc.record({
  fourOctetAs: fc.boolean(),
  extendedMessages: fc.constant(true),
  families: fc.constant([{ afi: 1 as const, safi: 1 as const }, { afi: 2 as const, safi: 1 as const }]),
  ebgp: fc.boolean(),
}, { noNullPrototype: true });

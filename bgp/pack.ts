/**
 * Turn a RIB outgoing batch into UPDATE messages: one attribute set per UPDATE, as many prefixes
 * as fit in the maximum message size (RFC 4271 §4.3: 4096 octets, RFC 8654 extended: 65535).
 * IPv4 uses the classic NLRI/withdrawn fields, IPv6 MP_REACH/MP_UNREACH (RFC 4760, RFC 2545 next
 * hops). Also builds the End-of-RIB markers of RFC 4724 §2.
 *
 * @module
 */

import { AFI, type Afi, MessageType, type Prefix, SAFI, type UpdateMessage } from "./codec/types.ts";
import type { RibAttrs } from "./propagate.ts";
import type { OutBatch } from "./rib.ts";

/** Octets a prefix takes in NLRI: length octet + significant address octets. */
export function prefixWireLen(p: Prefix): number {
  return 1 + ((p.len + 7) >> 3);
}

/** Split attributes kept by the RIB into UPDATE fields for `afi`. */
function announceShell(afi: Afi, a: RibAttrs): UpdateMessage {
  const { nextHop, nextHopLinkLocal, ...attrs } = a;
  if (afi === AFI.IPv4) {
    return { type: MessageType.Update, withdrawn: [], attrs: { ...attrs, nextHop }, nlri: [] };
  }
  const nextHops = nextHopLinkLocal ? [nextHop, nextHopLinkLocal] : [nextHop];
  return {
    type: MessageType.Update,
    withdrawn: [],
    attrs,
    nlri: [],
    mpReach: { afi, safi: SAFI.Unicast, nextHops, nlri: [] },
  };
}

function withPrefixes(shell: UpdateMessage, afi: Afi, ps: Prefix[]): UpdateMessage {
  if (afi === AFI.IPv4) return { ...shell, nlri: ps };
  return { ...shell, mpReach: { ...shell.mpReach!, nlri: ps } };
}

/** Chunk prefixes so `base + Σ wire length ≤ max`. */
function chunks(ps: Prefix[], room: number): Prefix[][] {
  const out: Prefix[][] = [];
  let cur: Prefix[] = [];
  let used = 0;
  for (const p of ps) {
    const l = prefixWireLen(p);
    if (used + l > room && cur.length) {
      out.push(cur);
      cur = [];
      used = 0;
    }
    cur.push(p);
    used += l;
  }
  if (cur.length) out.push(cur);
  return out;
}

/**
 * Encode a batch into wire messages. `encode` is the codec's encoder bound to the session context;
 * `maxLen` the negotiated maximum message size.
 */
export function packBatch(
  batch: OutBatch,
  encode: (m: UpdateMessage) => Uint8Array,
  maxLen: number,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  const afi = batch.afi;
  if (batch.withdraw.length) {
    if (afi === AFI.IPv4) {
      for (const c of chunks(batch.withdraw, maxLen - 23)) {
        out.push(encode({ type: MessageType.Update, withdrawn: c, attrs: {}, nlri: [] }));
      }
    } else {
      // 19 header + 4 length fields + 4 attribute header (extended length) + 3 AFI/SAFI.
      for (const c of chunks(batch.withdraw, maxLen - 30)) {
        out.push(encode({
          type: MessageType.Update,
          withdrawn: [],
          attrs: {},
          nlri: [],
          mpUnreach: { afi, safi: SAFI.Unicast, withdrawn: c },
        }));
      }
    }
  }
  for (const g of batch.announce) {
    const shell = announceShell(afi, g.attrs);
    // The empty-NLRI encoding gives the exact overhead; 2 octets of slack cover an attribute
    // length growing into the extended-length form once NLRI is added to MP_REACH.
    const base = encode(shell).length + (afi === AFI.IPv4 ? 0 : 2);
    if (base >= maxLen) continue; // attributes alone too large: cannot be sent (logged by caller's counters)
    for (const c of chunks(g.prefixes, maxLen - base)) out.push(encode(withPrefixes(shell, afi, c)));
  }
  return out;
}

/** End-of-RIB for `afi` (RFC 4724 §2): an empty UPDATE for IPv4, an empty MP_UNREACH otherwise. */
export function endOfRib(afi: Afi): UpdateMessage {
  if (afi === AFI.IPv4) return { type: MessageType.Update, withdrawn: [], attrs: {}, nlri: [] };
  return {
    type: MessageType.Update,
    withdrawn: [],
    attrs: {},
    nlri: [],
    mpUnreach: { afi, safi: SAFI.Unicast, withdrawn: [] },
  };
}

/** The family an UPDATE is the End-of-RIB marker of, or null. */
export function isEndOfRib(m: UpdateMessage): Afi | null {
  const noAttrs = Object.keys(m.attrs).length === 0 || Object.values(m.attrs).every((v) => v === undefined);
  if (!m.withdrawn.length && !m.nlri.length && !m.mpReach && !m.mpUnreach && noAttrs) return AFI.IPv4;
  if (
    !m.withdrawn.length && !m.nlri.length && !m.mpReach && m.mpUnreach && !m.mpUnreach.withdrawn.length &&
    noAttrs
  ) return m.mpUnreach.afi;
  return null;
}

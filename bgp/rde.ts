/**
 * The UPDATE → RIB adapter: the typed boundary between a session and the route decision engine,
 * as OpenBGPD keeps its session engine and RDE apart. `ribInputs` turns one received UPDATE into
 * the RIB operations it asks for (pure: no RIB, no session state); `applyRibInput` performs one.
 * The session only passes the inputs on (and handles End-of-RIB, which touches its GR timers).
 *
 * @module
 */

import type { BgpError } from "./codec/errors.ts";
import { AFI, type Afi, type Prefix, type UpdateMessage } from "./codec/types.ts";
import { isEndOfRib } from "./pack.ts";
import { isLinkLocal6 } from "./prefix.ts";
import type { RibAttrs } from "./propagate.ts";
import type { Rib, Source } from "./rib.ts";
import { checkUpdateForSession } from "./wire.ts";

/** One operation a received UPDATE asks of the RIB. */
export type RibInput =
  | { kind: "withdraw"; prefixes: Prefix[] }
  | { kind: "announce"; prefixes: Prefix[]; attrs: RibAttrs }
  | { kind: "end-of-rib"; afi: Afi };

/** What the translation needs to know of the session. */
export interface UpdateContext {
  /** Negotiated address families; NLRI of any other family is ignored. */
  families: readonly Afi[];
  /**
   * For the RFC 7606 checks that need configuration (eBGP first AS, a next hop that is our own
   * address); absent before the OPEN exchange.
   */
  session?: { peerAs: number; ebgp: boolean; localAddress: string };
}

/**
 * The RIB operations of one UPDATE, plus the RFC 7606 finding that turned it into a withdrawal
 * (`error`, for the session to count and log), if any.
 */
export function ribInputs(m: UpdateMessage, c: UpdateContext): { inputs: RibInput[]; error?: BgpError } {
  let error: BgpError | undefined;
  if (c.session && !m.treatAsWithdraw) {
    const s = c.session;
    const err = checkUpdateForSession(m, s.peerAs, s.ebgp, [s.localAddress]);
    if (err) {
      error = err;
      m = { ...m, treatAsWithdraw: true };
    }
  }
  const eor = isEndOfRib(m);
  if (eor !== null) return { inputs: [{ kind: "end-of-rib", afi: eor }], error };
  if (m.treatAsWithdraw) {
    // RFC 7606: every prefix the UPDATE carries is withdrawn.
    const prefixes = [
      ...m.withdrawn,
      ...m.nlri,
      ...(m.mpReach?.nlri ?? []),
      ...(m.mpUnreach?.withdrawn ?? []),
    ];
    return { inputs: [{ kind: "withdraw", prefixes }], error };
  }
  const fams = c.families;
  const inputs: RibInput[] = [];
  if (m.withdrawn.length) inputs.push({ kind: "withdraw", prefixes: m.withdrawn });
  if (m.mpUnreach?.withdrawn.length && fams.includes(m.mpUnreach.afi)) {
    inputs.push({ kind: "withdraw", prefixes: m.mpUnreach.withdrawn });
  }
  if (m.nlri.length && fams.includes(AFI.IPv4) && m.attrs.nextHop) {
    inputs.push({ kind: "announce", prefixes: m.nlri, attrs: m.attrs as RibAttrs });
  }
  const mp = m.mpReach;
  if (mp && mp.nlri.length && fams.includes(mp.afi) && mp.nextHops.length) {
    const { nextHop: _ignored, ...rest } = m.attrs;
    let nh = mp.nextHops[0];
    let ll = mp.nextHops[1];
    // RFC 2545 §3: a link-local-only next hop comes as the global one; keep it as link-local too.
    if (isLinkLocal6(nh) && !ll) ll = nh;
    if (nh === "::" && ll) nh = ll;
    const attrs: RibAttrs = { ...rest, nextHop: nh, ...(ll ? { nextHopLinkLocal: ll } : {}) };
    inputs.push({ kind: "announce", prefixes: mp.nlri, attrs });
  }
  return { inputs, error };
}

/** Perform one withdraw/announce for `src` (End-of-RIB is the session's: it drives GR). */
export function applyRibInput(rib: Rib, src: Source, i: Exclude<RibInput, { kind: "end-of-rib" }>): void {
  if (i.kind === "withdraw") rib.withdraw(src, i.prefixes);
  else rib.announce(src, i.prefixes, i.attrs);
}

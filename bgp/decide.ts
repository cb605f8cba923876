/**
 * The BGP decision process (RFC 4271 §9.1.2.2, with RFC 4456 §9 for route reflection): choose
 * one best path among the candidates for a prefix. Written as the RFC writes it, a sequence of
 * elimination steps over the candidate set, because MED comparison (step c) only holds among
 * routes from the same neighbour AS and is therefore not a total order: a pairwise sort could
 * give an order-dependent answer, elimination cannot.
 *
 * Steps, each named in `selectBest`'s trace:
 * 0. locally originated over learned (our own origination wins, like a local weight)
 * 1. §9.1.1 highest degree of preference = LOCAL_PREF (default 100)
 * a. §9.1.2.2 a) shortest AS_PATH; an AS_SET counts 1, confederation segments 0
 * b. §9.1.2.2 b) lowest ORIGIN (IGP < EGP < INCOMPLETE)
 * c. §9.1.2.2 c) lowest MED among routes from the same neighbour AS (missing MED = 0)
 * d. §9.1.2.2 d) eBGP-learned over iBGP-learned
 * e. §9.1.2.2 e) lowest interior cost to the next hop: we have no IGP, all equal (skipped)
 * f. §9.1.2.2 f) lowest BGP identifier; ORIGINATOR_ID stands in for it when present (RFC 4456 §9)
 * f2. RFC 4456 §9: shortest CLUSTER_LIST
 * g. §9.1.2.2 g) lowest peer address
 *
 * @module
 */

import { type AsPathSegment, AsPathSegmentType, type PathAttributes } from "./codec/types.ts";
import { parseIp } from "../net/ip.ts";

/** Where a candidate path came from: the facts about its source the decision needs. */
export interface SourceFacts {
  /** Locally originated (no peer). */
  local: boolean;
  /** Learned over an eBGP session. */
  ebgp: boolean;
  /** AS of the neighbour we learned it from (our own AS for iBGP and local). */
  asn: number;
  /** The sending peer's BGP identifier (dotted quad); ours for local routes. */
  routerId: string;
  /** The sending peer's address, "" for local routes. */
  address: string;
  /** The sending peer is one of our route-reflector clients. */
  rrClient: boolean;
}

/** A candidate path: its attributes and its source. */
export interface Candidate {
  attrs: PathAttributes;
  src: SourceFacts;
}

/** The default LOCAL_PREF when a path carries none (eBGP-learned paths, local origination). */
export const DEFAULT_LOCAL_PREF = 100;

/** AS_PATH length for the decision: AS_SEQUENCE counts its ASNs, AS_SET counts 1, confed segments 0. */
export function asPathLength(path: AsPathSegment[] | undefined): number {
  let n = 0;
  for (const seg of path ?? []) {
    if (seg.type === AsPathSegmentType.AsSequence) n += seg.asns.length;
    else if (seg.type === AsPathSegmentType.AsSet) n += 1;
  }
  return n;
}

/**
 * The neighbour AS for MED comparison (§9.1.2.2 c): the first AS of the first AS_SEQUENCE;
 * for a path with no AS (local, or iBGP with empty path) the source's AS.
 */
export function neighbourAs(c: Candidate): number {
  const first = c.attrs.asPath?.find((s) =>
    s.type === AsPathSegmentType.AsSequence || s.type === AsPathSegmentType.AsSet
  );
  if (first && first.type === AsPathSegmentType.AsSequence && first.asns.length) return first.asns[0];
  return c.src.local ? -1 : c.src.asn;
}

// Router ids and peer addresses as numbers, for "lowest wins" (§9.1.2.2 f, g); "" (none) is 0.
function ipToBigint(a: string): bigint {
  const b = a === "" ? null : parseIp(a, { leadingZeros: true });
  let v = 0n;
  if (b) { for (const x of b) v = (v << 8n) | BigInt(x); }
  return v;
}

type Step = { name: string; keep: <T extends Candidate>(cs: T[]) => T[] };

function keepMin<T extends Candidate>(cs: T[], f: (c: T) => number | bigint): T[] {
  let best: number | bigint | undefined;
  for (const c of cs) {
    const v = f(c);
    if (best === undefined || v < best) best = v;
  }
  return cs.filter((c) => f(c) === best);
}

/** The elimination steps in RFC order. */
export const STEPS: Step[] = [
  {
    name: "0 local origination",
    keep: (cs) => cs.some((c) => c.src.local) ? cs.filter((c) => c.src.local) : cs,
  },
  {
    name: "RFC 4271 §9.1.1 highest LOCAL_PREF",
    keep: (cs) => keepMin(cs, (c) => -(c.attrs.localPref ?? DEFAULT_LOCAL_PREF)),
  },
  {
    name: "RFC 4271 §9.1.2.2 a) shortest AS_PATH",
    keep: (cs) => keepMin(cs, (c) => asPathLength(c.attrs.asPath)),
  },
  { name: "RFC 4271 §9.1.2.2 b) lowest ORIGIN", keep: (cs) => keepMin(cs, (c) => c.attrs.origin ?? 2) },
  {
    name: "RFC 4271 §9.1.2.2 c) lowest MED per neighbour AS",
    keep: (cs) => {
      const minByAs = new Map<number, number>();
      for (const c of cs) {
        const as = neighbourAs(c), med = c.attrs.med ?? 0;
        const m = minByAs.get(as);
        if (m === undefined || med < m) minByAs.set(as, med);
      }
      return cs.filter((c) => (c.attrs.med ?? 0) === minByAs.get(neighbourAs(c)));
    },
  },
  {
    name: "RFC 4271 §9.1.2.2 d) eBGP over iBGP",
    keep: (cs) => cs.some((c) => c.src.ebgp) ? cs.filter((c) => c.src.ebgp) : cs,
  },
  // §9.1.2.2 e) interior cost: no IGP here, every next hop costs the same.
  {
    name: "RFC 4271 §9.1.2.2 f) lowest BGP identifier (ORIGINATOR_ID per RFC 4456 §9)",
    keep: (cs) => keepMin(cs, (c) => ipToBigint(c.attrs.originatorId ?? c.src.routerId)),
  },
  {
    name: "RFC 4456 §9 shortest CLUSTER_LIST",
    keep: (cs) => keepMin(cs, (c) => c.attrs.clusterList?.length ?? 0),
  },
  {
    name: "RFC 4271 §9.1.2.2 g) lowest peer address",
    keep: (cs) => keepMin(cs, (c) => ipToBigint(c.src.address)),
  },
];

/** Pick the best candidate; null for an empty set. Stable: ties after step g keep the first. */
export function selectBest<T extends Candidate>(candidates: readonly T[]): T | null {
  if (candidates.length <= 1) return candidates[0] ?? null;
  let cs = candidates.slice();
  for (const s of STEPS) {
    cs = s.keep(cs);
    if (cs.length === 1) return cs[0];
  }
  return cs[0];
}

/**
 * Compare two candidates and name the RFC step that decided: `winner` is 0 (a) or 1 (b).
 * Used for diagnostics and tests; `selectBest` is what the RIB runs.
 */
export function explain(a: Candidate, b: Candidate): { winner: 0 | 1; step: string } {
  let cs = [a, b];
  for (const s of STEPS) {
    cs = s.keep(cs);
    if (cs.length === 1) return { winner: cs[0] === a ? 0 : 1, step: s.name };
  }
  return { winner: 0, step: "tie" };
}

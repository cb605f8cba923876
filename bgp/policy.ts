/**
 * Import and export policies: ordered statements, each a match (all given conditions must hold)
 * and actions. Modifying actions accumulate; the first statement with a `result` decides; when no
 * statement decides, the policy's `default` applies (accept unless told otherwise).
 *
 * Policies are applied per peer on import (before a path enters Loc-RIB) and on export (after the
 * protocol rules in `propagate.ts`). `policyDependsOnPrefix` tells the RIB whether it may memoise
 * a result per attribute set instead of evaluating per prefix.
 *
 * @module
 */

import type { LargeCommunity, PathAttributes, Prefix } from "./codec/types.ts";
import { AsPathSegmentType } from "./codec/types.ts";
import { ipv4Covers, prefixContains } from "./prefix.ts";
import { parseIPv4 } from "../net/ip.ts";

/** A prefix-list entry: `prefix` covers the route and its length is within [ge, le] (both default to prefix.len, exact match). */
export interface PrefixMatch {
  prefix: Prefix;
  ge?: number;
  le?: number;
}

export interface PolicyMatch {
  /** Any entry matches. */
  prefixes?: PrefixMatch[];
  /** Any of these communities (32-bit values) is present. */
  communities?: number[];
  /** Any of these large communities is present. */
  largeCommunities?: LargeCommunity[];
  /** The AS_PATH contains this ASN. */
  asPathContains?: number;
  /** Regular expression over the AS_PATH written as space-separated ASNs ("" for an empty path), e.g. "^64512 ". */
  asPathRegex?: string;
  /** The route was learned from (import) / is sent to (export) one of these peer addresses. */
  neighbor?: string[];
}

export interface PolicyActions {
  /** Terminal result; undefined = keep evaluating later statements. */
  result?: "accept" | "reject";
  setCommunities?: number[];
  addCommunities?: number[];
  removeCommunities?: number[];
  setLargeCommunities?: LargeCommunity[];
  addLargeCommunities?: LargeCommunity[];
  removeLargeCommunities?: LargeCommunity[];
  asPathPrepend?: { asn: number; count: number };
  /** "self": our session address; "unchanged": keep even where the protocol would rewrite; or an address. */
  nextHop?: "self" | "unchanged" | string;
  med?: number;
  localPref?: number;
}

export interface PolicyStatement {
  name?: string;
  match?: PolicyMatch;
  actions: PolicyActions;
}

/** An ordered list of statements. */
export interface Policy {
  statements: PolicyStatement[];
  default?: "accept" | "reject";
}

/** What applying a policy gives: rejected, or the (possibly modified) attributes and a next-hop directive. */
export type PolicyResult =
  | { accept: false }
  | { accept: true; attrs: PathAttributes; nextHop?: "self" | "unchanged" | string };

/** True when any statement matches on the prefix (so results cannot be cached per attribute set). */
export function policyDependsOnPrefix(p: Policy | undefined): boolean {
  return !!p?.statements.some((s) => s.match?.prefixes !== undefined);
}

const regexCache = new Map<string, RegExp>();

function asPathString(attrs: PathAttributes): string {
  const parts: string[] = [];
  for (const seg of attrs.asPath ?? []) {
    if (seg.type === AsPathSegmentType.AsSet) parts.push(`{${seg.asns.join(",")}}`);
    else parts.push(...seg.asns.map(String));
  }
  return parts.join(" ");
}

function lcEq(a: LargeCommunity, b: LargeCommunity): boolean {
  return a.global === b.global && a.local1 === b.local1 && a.local2 === b.local2;
}

function matches(
  m: PolicyMatch | undefined,
  prefix: Prefix,
  attrs: PathAttributes,
  neighbor: string,
): boolean {
  if (!m) return true;
  if (m.prefixes) {
    // Lengths first (no parsing), and the route's address parsed once for every entry: an
    // import policy tests each received route against each entry.
    let y = -2;
    const ok = m.prefixes.some((pm) => {
      const o = pm.prefix;
      if (o.afi !== prefix.afi || prefix.len < (pm.ge ?? o.len)) return false;
      if (prefix.len > (pm.le ?? (pm.ge !== undefined ? (prefix.afi === 1 ? 32 : 128) : o.len))) return false;
      if (prefix.afi !== 1) return prefixContains(o, prefix);
      if (y === -2) y = parseIPv4(prefix.addr, true);
      const x = parseIPv4(o.addr, true);
      if (x < 0 || y < 0) return prefixContains(o, prefix);
      return o.len <= prefix.len && ipv4Covers(x, o.len, y);
    });
    if (!ok) return false;
  }
  if (m.communities && !m.communities.some((c) => attrs.communities?.includes(c))) return false;
  if (
    m.largeCommunities && !m.largeCommunities.some((c) => attrs.largeCommunities?.some((x) => lcEq(c, x)))
  ) {
    return false;
  }
  if (m.asPathContains !== undefined && !attrs.asPath?.some((s) => s.asns.includes(m.asPathContains!))) {
    return false;
  }
  if (m.asPathRegex !== undefined) {
    let re = regexCache.get(m.asPathRegex);
    if (!re) regexCache.set(m.asPathRegex, re = new RegExp(m.asPathRegex));
    if (!re.test(asPathString(attrs))) return false;
  }
  if (m.neighbor && !m.neighbor.includes(neighbor)) return false;
  return true;
}

function applyActions(a: PolicyActions, attrs: PathAttributes): PathAttributes {
  let out = attrs;
  const set = <K extends keyof PathAttributes>(k: K, v: PathAttributes[K]) => {
    out = { ...out, [k]: v };
  };
  if (a.setCommunities) set("communities", [...a.setCommunities]);
  if (a.addCommunities) {
    const cur = out.communities ?? [];
    set("communities", [...cur, ...a.addCommunities.filter((c) => !cur.includes(c))]);
  }
  if (a.removeCommunities) {
    set(
      "communities",
      (out.communities ?? []).filter((c) => !a.removeCommunities!.includes(c)),
    );
  }
  if (a.setLargeCommunities) set("largeCommunities", [...a.setLargeCommunities]);
  if (a.addLargeCommunities) {
    const cur = out.largeCommunities ?? [];
    set("largeCommunities", [...cur, ...a.addLargeCommunities.filter((c) => !cur.some((x) => lcEq(c, x)))]);
  }
  if (a.removeLargeCommunities) {
    set(
      "largeCommunities",
      (out.largeCommunities ?? []).filter((x) => !a.removeLargeCommunities!.some((c) => lcEq(c, x))),
    );
  }
  if (a.asPathPrepend && a.asPathPrepend.count > 0) {
    const add = Array(a.asPathPrepend.count).fill(a.asPathPrepend.asn);
    set("asPath", prependAsns(out.asPath, add));
  }
  if (a.med !== undefined) set("med", a.med);
  if (a.localPref !== undefined) set("localPref", a.localPref);
  if (out.communities?.length === 0) {
    const { communities: _, ...rest } = out;
    out = rest;
  }
  if (out.largeCommunities?.length === 0) {
    const { largeCommunities: _, ...rest } = out;
    out = rest;
  }
  return out;
}

/** Prepend ASNs to an AS_PATH, merging into a leading AS_SEQUENCE (max 255 ASNs per segment). */
export function prependAsns(
  path: PathAttributes["asPath"],
  asns: number[],
): NonNullable<PathAttributes["asPath"]> {
  const segs = path ? path.map((s) => ({ type: s.type, asns: s.asns.slice() })) : [];
  if (
    segs.length && segs[0].type === AsPathSegmentType.AsSequence && segs[0].asns.length + asns.length <= 255
  ) {
    segs[0].asns.unshift(...asns);
  } else {
    segs.unshift({ type: AsPathSegmentType.AsSequence, asns: asns.slice() });
  }
  return segs;
}

/** Apply `policy` to one route. `neighbor` is the peer the route came from (import) or goes to (export). */
export function applyPolicy(
  policy: Policy | undefined,
  prefix: Prefix,
  attrs: PathAttributes,
  neighbor: string,
): PolicyResult {
  if (!policy) return { accept: true, attrs };
  let cur = attrs;
  let nextHop: PolicyActions["nextHop"];
  for (const st of policy.statements) {
    if (!matches(st.match, prefix, cur, neighbor)) continue;
    cur = applyActions(st.actions, cur);
    if (st.actions.nextHop !== undefined) nextHop = st.actions.nextHop;
    if (st.actions.result === "reject") return { accept: false };
    if (st.actions.result === "accept") return { accept: true, attrs: cur, nextHop };
  }
  if (policy.default === "reject") return { accept: false };
  return { accept: true, attrs: cur, nextHop };
}

/**
 * Check a policy for values the wire cannot carry; returns every problem (empty = valid).
 * Messages name the statement and field and quote the bad value.
 */
export function validatePolicy(p: Policy, where: string): string[] {
  const errs: string[] = [];
  const u32 = (v: number) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
  p.statements.forEach((st, i) => {
    const at = `${where}.statements[${i}]${st.name ? ` (${st.name})` : ""}`;
    for (const pm of st.match?.prefixes ?? []) {
      const max = pm.prefix.afi === 1 ? 32 : 128;
      if (pm.ge !== undefined && (pm.ge < pm.prefix.len || pm.ge > max)) {
        errs.push(`${at}.match.prefixes: ge ${pm.ge} must be within [${pm.prefix.len}, ${max}]`);
      }
      if (pm.le !== undefined && (pm.le < (pm.ge ?? pm.prefix.len) || pm.le > max)) {
        errs.push(`${at}.match.prefixes: le ${pm.le} must be within [ge or length, ${max}]`);
      }
    }
    if (st.match?.asPathRegex !== undefined) {
      try {
        new RegExp(st.match.asPathRegex);
      } catch (e) {
        errs.push(
          `${at}.match.asPathRegex: ${JSON.stringify(st.match.asPathRegex)} is not a valid regex (${e})`,
        );
      }
    }
    const a = st.actions;
    for (const k of ["med", "localPref"] as const) {
      if (a[k] !== undefined && !u32(a[k]!)) {
        errs.push(`${at}.actions.${k}: ${a[k]} is not a 32-bit unsigned integer`);
      }
    }
    for (const k of ["setCommunities", "addCommunities", "removeCommunities"] as const) {
      for (const c of a[k] ?? []) {
        if (!u32(c)) errs.push(`${at}.actions.${k}: ${c} is not a 32-bit community value`);
      }
    }
    if (
      a.asPathPrepend &&
      (!u32(a.asPathPrepend.asn) || a.asPathPrepend.count < 0 || a.asPathPrepend.count > 32)
    ) {
      errs.push(
        `${at}.actions.asPathPrepend: ${JSON.stringify(a.asPathPrepend)} needs a 32-bit asn and count 0..32`,
      );
    }
  });
  return errs;
}

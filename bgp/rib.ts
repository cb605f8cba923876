/**
 * Adj-RIB-In per peer, Loc-RIB, Adj-RIB-Out per peer, and the glue between them (RFC 4271 §3.2,
 * §9). Built for a full table (1M prefixes):
 * - attribute sets are interned (`AttrTable`), so a million prefixes from one feed share a handful
 *   of attribute objects and "same attributes?" is a pointer comparison;
 * - import policy and loop checks run once per UPDATE when the policy does not look at prefixes;
 *   export results are memoised per (source, attribute set) per peer for the same reason (for
 *   attribute sets more than one path holds);
 * - changed prefixes are collected in a dirty set and exported in one pass (`flush`), which groups
 *   prefixes by outgoing attribute set so the session packs them into few UPDATEs.
 *
 * The RIB knows nothing of sockets or kernels: it emits best-path changes and per-peer outgoing
 * batches.
 *
 * @module
 */

import { AFI, type Afi, type PathAttributes, type Prefix } from "./codec/types.ts";
import { type Candidate, selectBest, type SourceFacts } from "./decide.ts";
import { applyPolicy, type Policy, policyDependsOnPrefix } from "./policy.ts";
import { parsePrefix, SLOPPY_PREFIX } from "./prefix.ts";
import {
  applyNextHopDirective,
  exportAttrs,
  importLoop,
  importNormalise,
  type LocalFacts,
  type RibAttrs,
  type TargetFacts,
} from "./propagate.ts";

/**
 * RIB key of a prefix. IPv4 prefixes key by a number (address × 64 + length, exact in a double):
 * a million string keys and their prefix objects would cost ~130 bytes per prefix more, and the
 * prefix is cheap to rebuild from the number when it is needed (exports, reads). IPv6 keys by
 * the canonical "addr/len" text.
 */
export type RibKey = number | string;

/** The key of `p` (addresses are canonical, so one prefix = one key). */
export function ribKey(p: Prefix): RibKey {
  if (p.afi !== AFI.IPv4) return `${p.addr}/${p.len}`;
  const a = p.addr;
  let n = 0, oct = 0;
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + oct;
      oct = 0;
    } else oct = oct * 10 + (c - 48);
  }
  return (n * 256 + oct) * 64 + p.len;
}

/** The "addr/len" text of a key (`formatPrefix` of its prefix). */
export function ribKeyText(k: RibKey): string {
  if (typeof k === "string") return k;
  const len = k % 64;
  const n = (k - len) / 64;
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${len}`;
}

/** The prefix a key stands for. */
export function keyPrefix(k: RibKey): Prefix {
  if (typeof k === "string") return parsePrefix(k, SLOPPY_PREFIX)!;
  const len = k % 64;
  const n = (k - len) / 64;
  return {
    afi: AFI.IPv4,
    addr: `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`,
    len,
  };
}

function keyAfi(k: RibKey): Afi {
  return typeof k === "number" ? AFI.IPv4 : AFI.IPv6;
}

/** An interned attribute set. */
export interface AttrEntry {
  readonly id: number;
  readonly key: string;
  readonly attrs: Readonly<RibAttrs>;
  refs: number;
}

function u8hex(v: Uint8Array): string {
  let s = "";
  for (const b of v) s += b.toString(16).padStart(2, "0");
  return s;
}

/** A canonical string for an attribute set, fixed field order (independent of object key order). */
export function attrsKey(a: RibAttrs): string {
  const ap = a.asPath?.map((s) => `${s.type}:${s.asns.join(",")}`).join(";") ?? "-";
  const lc = a.largeCommunities?.map((c) => `${c.global}:${c.local1}:${c.local2}`).join(",") ?? "-";
  const un = a.unknown?.map((u) => `${u.flags}.${u.code}.${u8hex(u.value)}`).join(",") ?? "-";
  return [
    a.origin ?? "-",
    ap,
    a.nextHop,
    a.nextHopLinkLocal ?? "-",
    a.med ?? "-",
    a.localPref ?? "-",
    a.atomicAggregate ? 1 : 0,
    a.aggregator ? `${a.aggregator.asn}@${a.aggregator.address}` : "-",
    a.communities?.join(",") ?? "-",
    lc,
    a.originatorId ?? "-",
    a.clusterList?.join(",") ?? "-",
    un,
  ].join("|");
}

/** Interning table for attribute sets, reference counted so churn does not leak. */
export class AttrTable {
  #byKey = new Map<string, AttrEntry>();
  // The codec hands out one frozen object per distinct attribute bytes; remembering which entry an
  // object interned to skips building the key for every UPDATE of a full-table feed.
  #byObject = new WeakMap<object, AttrEntry>();
  #next = 1;

  intern(attrs: RibAttrs): AttrEntry {
    const seen = this.#byObject.get(attrs);
    if (seen && this.#byKey.get(seen.key) === seen) return seen;
    const key = attrsKey(attrs);
    let e = this.#byKey.get(key);
    if (!e) {
      e = { id: this.#next++, key, attrs: Object.freeze({ ...attrs }), refs: 0 };
      this.#byKey.set(key, e);
    }
    if (Object.isFrozen(attrs)) this.#byObject.set(attrs, e);
    return e;
  }
  retain(e: AttrEntry): void {
    e.refs++;
  }
  release(e: AttrEntry): void {
    if (--e.refs <= 0) this.#byKey.delete(e.key);
  }
  get size(): number {
    return this.#byKey.size;
  }
}

/** A source of paths: a peer, or "local" origination. Mutable: a peer's router ID is learned at OPEN. */
export interface Source extends SourceFacts {
  readonly id: number;
  importPolicy?: Policy;
  /** Paths from this source currently in the RIB (its Adj-RIB-In after import policy). */
  count: number;
  /** How many of them are stale (graceful restart). */
  staleCount: number;
  /** Prefixes rejected by import policy in the last announcement of each (a count, not a set). */
  rejected: number;
}

/** One path in the Loc-RIB candidate set. */
export interface Path extends Candidate {
  readonly src: Source;
  readonly e: AttrEntry;
  stale: boolean;
}

/** A path object: three fields, `attrs` read through the interned entry (a million of these exist). */
class RibPath implements Path {
  constructor(readonly src: Source, readonly e: AttrEntry, public stale: boolean) {}
  get attrs(): PathAttributes {
    return this.e.attrs;
  }
}

/**
 * One prefix: its candidate paths (at most one per source; the Adj-RIBs-In are these, so a
 * prefix costs one map entry however many peers send it) and the selected best.
 */
interface Entry {
  readonly key: RibKey;
  /** One path (the common case, no array), several, or none (entry about to be deleted). */
  paths: Path | Path[] | null;
  best: Path | null;
  dirty: boolean;
}

/** A peer as an export target. */
export interface Target extends TargetFacts {
  readonly id: number;
  exportPolicy?: Policy;
  families: Afi[];
  /** Adj-RIB-Out: what the peer was last sent, by prefix key. */
  readonly adjOut: Map<RibKey, AttrEntry>;
  /** Memoised export per (attribute set, source, family), when the export policy ignores prefixes. */
  memo: Map<AttrEntry, Array<{ src: Source; afi: Afi; res: AttrEntry | null }>>;
  /** Receives outgoing batches; false while the session is not Established. */
  active: boolean;
}

/** An outgoing batch for one peer and family: announcements grouped by attribute set, and withdrawals. */
export interface OutBatch {
  afi: Afi;
  announce: Array<{ attrs: RibAttrs; prefixes: Prefix[] }>;
  withdraw: Prefix[];
}

/** The public shape of a route (API reads and best-path events). */
export interface Route {
  prefix: Prefix;
  attrs: PathAttributes;
  nextHop: string;
  nextHopLinkLocal?: string;
  /** Peer address, or "local". */
  source: string;
  sourceAsn: number;
  ebgp: boolean;
  stale: boolean;
}

/**
 * One prefix's best path changed. `prefix` and `best` are built when first read: a consumer that
 * needs only the key and the next hop (a FIB writer under a full table's churn) skips building a
 * prefix object and a route per change.
 */
export class BestPathChange {
  #prefix: Prefix | undefined;
  #route: Route | null | undefined;
  /** The path's stale flag when the change happened (the flag changes in place later). */
  readonly #stale: boolean;
  constructor(
    /** The RIB's key of the prefix (`ribKeyText` gives its "addr/len" text). */
    readonly key: RibKey,
    readonly path: Path | null,
  ) {
    this.#stale = path?.stale ?? false;
  }

  get prefix(): Prefix {
    return this.#prefix ??= keyPrefix(this.key);
  }

  /** The new best route; null when the prefix has no path left. */
  get best(): Route | null {
    if (this.#route === undefined) {
      this.#route = this.path ? toRoute(this.prefix, this.path, this.#stale) : null;
    }
    return this.#route;
  }

  /** The best path's next hop when a peer supplied it; null with no path or a local one. */
  get peerNextHop(): string | null {
    const p = this.path;
    return p && !p.src.local && p.e.attrs.nextHop ? p.e.attrs.nextHop : null;
  }
}

export type BestPathListener = (ev: BestPathChange) => void;

/** Turn a path into the API's Route. */
export function toRoute(prefix: Prefix, p: Path, stale = p.stale): Route {
  return attrsToRoute(prefix, p.e, p.src.local ? "local" : p.src.address, p.src.asn, p.src.ebgp, stale);
}

function attrsToRoute(
  prefix: Prefix,
  e: AttrEntry,
  source: string,
  asn: number,
  ebgp: boolean,
  stale: boolean,
): Route {
  const { nextHop, nextHopLinkLocal, ...attrs } = e.attrs;
  const r: Route = { prefix, attrs: attrs as PathAttributes, nextHop, source, sourceAsn: asn, ebgp, stale };
  if (nextHopLinkLocal) r.nextHopLinkLocal = nextHopLinkLocal;
  return r;
}

/** Loc-RIB with its Adj-RIBs. */
export class Rib {
  readonly attrs = new AttrTable();
  readonly #entries = new Map<RibKey, Entry>();
  #dirty: Entry[] = [];
  readonly #targets = new Map<number, Target>();
  readonly #listeners = new Set<BestPathListener>();
  /** Targets that get a full pass at the next flush (just activated, or export policy changed). */
  readonly #fullSync = new Set<number>();
  #nextId = 1;

  constructor(public local: LocalFacts) {}

  /** A new path source (a peer or local origination). */
  newSource(facts: SourceFacts, importPolicy?: Policy): Source {
    return { ...facts, id: this.#nextId++, importPolicy, count: 0, staleCount: 0, rejected: 0 };
  }

  /** Register an export target; it starts inactive (call `activate` when the session is Established). */
  newTarget(facts: TargetFacts, families: Afi[], exportPolicy?: Policy): Target {
    const t: Target = {
      ...facts,
      id: this.#nextId++,
      families,
      exportPolicy,
      adjOut: new Map(),
      memo: new Map(),
      active: false,
    };
    this.#targets.set(t.id, t);
    return t;
  }

  removeTarget(t: Target): void {
    this.deactivate(t);
    this.#targets.delete(t.id);
  }

  onBestPathChange(cb: BestPathListener): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Apply one UPDATE's worth of announcements from `src`: loop checks and import policy, then the
   * paths replace the source's previous ones. Returns how many prefixes were accepted.
   */
  announce(src: Source, prefixes: Prefix[], attrs: RibAttrs): number {
    const loop = src.local ? null : importLoop(attrs, src, this.local);
    if (loop !== null) {
      // A looped path is an implicit withdraw of what the source sent before for these prefixes.
      this.withdraw(src, prefixes);
      return 0;
    }
    const normalised = importNormalise(attrs, src);
    let accepted = 0;
    if (!policyDependsOnPrefix(src.importPolicy)) {
      const r = applyPolicy(src.importPolicy, prefixes[0], normalised, src.address);
      if (!r.accept) {
        this.withdraw(src, prefixes);
        src.rejected += prefixes.length;
        return 0;
      }
      const e = this.attrs.intern(withNextHop(r.attrs, normalised, r.nextHop));
      for (let i = 0; i < prefixes.length; i++) this.#setPath(src, prefixes[i], e);
      accepted = prefixes.length;
    } else {
      for (const p of prefixes) {
        const r = applyPolicy(src.importPolicy, p, normalised, src.address);
        if (!r.accept) {
          this.withdraw(src, [p]);
          src.rejected++;
          continue;
        }
        this.#setPath(src, p, this.attrs.intern(withNextHop(r.attrs, normalised, r.nextHop)));
        accepted++;
      }
    }
    return accepted;
  }

  /** Remove `src`'s paths for these prefixes. */
  withdraw(src: Source, prefixes: Prefix[]): void {
    for (const p of prefixes) {
      const entry = this.#entries.get(ribKey(p));
      if (entry) this.#removePath(entry, src);
    }
  }

  #removePath(entry: Entry, src: Source): void {
    const ps = entry.paths;
    if (ps === null) return;
    if (!Array.isArray(ps)) {
      if (ps.src !== src) return;
      entry.paths = null;
      this.#dropped(ps, src);
      this.#reselect(entry);
      return;
    }
    for (let i = 0; i < ps.length; i++) {
      const old = ps[i];
      if (old.src !== src) continue;
      ps.splice(i, 1);
      if (ps.length === 1) entry.paths = ps[0];
      this.#dropped(old, src);
      this.#reselect(entry);
      return;
    }
  }

  #dropped(old: Path, src: Source): void {
    src.count--;
    if (old.stale) src.staleCount--;
    this.attrs.release(old.e);
  }

  #setPath(src: Source, prefix: Prefix, e: AttrEntry): void {
    const key = ribKey(prefix);
    const entry = this.#entries.get(key);
    this.attrs.retain(e);
    const path = new RibPath(src, e, false);
    if (!entry) {
      const fresh: Entry = { key, paths: path, best: null, dirty: false };
      this.#entries.set(key, fresh);
      src.count++;
      this.#reselect(fresh);
      return;
    }
    const ps = entry.paths;
    if (ps === null || !Array.isArray(ps)) {
      if (ps && ps.src === src) {
        if (ps.e === e && !ps.stale) {
          this.attrs.release(e); // duplicate announcement: nothing changes
          return;
        }
        entry.paths = path;
        if (ps.stale) src.staleCount--;
        this.attrs.release(ps.e);
      } else {
        entry.paths = ps ? [ps, path] : path;
        src.count++;
      }
      this.#reselect(entry);
      return;
    }
    for (let i = 0; i < ps.length; i++) {
      const old = ps[i];
      if (old.src !== src) continue;
      if (old.e === e && !old.stale) {
        this.attrs.release(e);
        return;
      }
      ps[i] = path;
      if (old.stale) src.staleCount--;
      this.attrs.release(old.e);
      this.#reselect(entry);
      return;
    }
    ps.push(path);
    src.count++;
    this.#reselect(entry);
  }

  #reselect(entry: Entry): void {
    const ps = entry.paths;
    const best = ps === null ? null : Array.isArray(ps) ? selectBest(ps) : ps;
    if (ps === null) this.#entries.delete(entry.key);
    if (best === entry.best) return; // same path object: nothing changed for anyone
    entry.best = best;
    if (!entry.dirty) {
      entry.dirty = true;
      this.#dirty.push(entry);
    }
  }

  /** Mark every path of `src` stale (graceful restart helper, RFC 4724 §4.2). Returns how many. */
  markStale(src: Source): number {
    let n = 0;
    for (const entry of this.#entries.values()) {
      const p = pathOf(entry, src);
      if (p && !p.stale) {
        p.stale = true;
        n++;
      }
    }
    src.staleCount += n;
    return src.staleCount;
  }

  /** Remove `src`'s stale paths (End-of-RIB or restart timer), optionally one family only. */
  sweepStale(src: Source, afi?: Afi): number {
    if (src.staleCount === 0) return 0;
    return this.#sweep(src, (p, entry) => p.stale && (afi === undefined || keyAfi(entry.key) === afi));
  }

  /** Remove every path of `src` (session down without graceful restart, or peer removed). */
  dropSource(src: Source): void {
    if (src.count > 0) this.#sweep(src, () => true);
    src.rejected = 0;
  }

  #sweep(src: Source, pred: (p: Path, e: Entry) => boolean): number {
    const hit: Entry[] = [];
    for (const entry of this.#entries.values()) {
      const p = pathOf(entry, src);
      if (p && pred(p, entry)) hit.push(entry);
    }
    for (const entry of hit) this.#removePath(entry, src);
    return hit.length;
  }

  /** Start exporting to `t`: every current best path is queued for it. */
  activate(t: Target): void {
    t.active = true;
    this.#clearMemo(t);
    this.#fullSync.add(t.id);
  }

  /** Recompute everything sent to `t` (its export policy changed); only differences are sent. */
  reexport(t: Target): void {
    this.#clearMemo(t);
    this.#fullSync.add(t.id);
  }

  /** Stop exporting to `t` and forget what it was sent (its Adj-RIB-Out died with the session). */
  deactivate(t: Target): void {
    t.active = false;
    for (const e of t.adjOut.values()) this.attrs.release(e);
    t.adjOut.clear();
    this.#clearMemo(t);
    this.#fullSync.delete(t.id);
  }

  #clearMemo(t: Target): void {
    for (const list of t.memo.values()) for (const m of list) if (m.res) this.attrs.release(m.res);
    t.memo.clear();
  }

  /** Re-send the whole Adj-RIB-Out of `t` (ROUTE-REFRESH received), optionally one family. */
  refreshBatches(t: Target, afi?: Afi): OutBatch[] {
    const groups = new Map<AttrEntry, Prefix[]>();
    for (const [key, e] of t.adjOut) {
      if (afi !== undefined && keyAfi(key) !== afi) continue;
      let g = groups.get(e);
      if (!g) groups.set(e, g = []);
      g.push(keyPrefix(key));
    }
    return toBatches(groups, []);
  }

  /**
   * Export everything that changed since the last flush: notify best-path listeners, and compute
   * each active target's outgoing batch against its Adj-RIB-Out. Returns batches per target.
   */
  flush(): Map<Target, OutBatch[]> {
    const out = new Map<Target, OutBatch[]>();
    const dirty = this.#dirty;
    this.#dirty = [];
    if (this.#listeners.size) {
      for (const entry of dirty) {
        const ev = new BestPathChange(entry.key, entry.best);
        for (const l of this.#listeners) {
          try {
            l(ev);
          } catch {
            // A listener's bug must not break route processing.
          }
        }
      }
    }
    for (const t of this.#targets.values()) {
      if (!t.active) continue;
      const batches = this.#fullSync.has(t.id) ? this.#exportAll(t, dirty) : this.#exportTo(t, dirty);
      if (batches.length) out.set(t, batches);
    }
    for (const entry of dirty) entry.dirty = false;
    this.#fullSync.clear();
    return out;
  }

  #exportOne(t: Target, entry: Entry): AttrEntry | null {
    const best = entry.best;
    const afi = keyAfi(entry.key);
    if (!best || !t.families.includes(afi)) return null;
    // Memoise only attribute sets more than one path holds: a set held by one path is exported
    // once per flush of that prefix, and memoising it cost ~250 kB per peer with 1,000 route-
    // reflector clients each announcing its own set (one entry per client per target).
    const cacheable = best.e.refs > 1 && !policyDependsOnPrefix(t.exportPolicy);
    let list: Array<{ src: Source; afi: Afi; res: AttrEntry | null }> | undefined;
    if (cacheable) {
      list = t.memo.get(best.e);
      if (list) {
        for (const m of list) if (m.src === best.src && m.afi === afi) return m.res;
      }
    }
    let res: AttrEntry | null = null;
    const base = exportAttrs(best.e.attrs as RibAttrs, best.src, t, this.local, afi);
    if (base) {
      const r = applyPolicy(t.exportPolicy, keyPrefix(entry.key), base, t.address);
      if (r.accept) {
        const withNh = applyNextHopDirective(
          r.attrs as RibAttrs,
          r.nextHop,
          best.e.attrs as RibAttrs,
          t,
          afi,
        );
        if (withNh) res = this.attrs.intern(withNh);
      }
    }
    if (cacheable) {
      if (t.memo.size > 50_000) this.#clearMemo(t); // bound it under attribute churn
      if (res) this.attrs.retain(res);
      if (!list || !t.memo.has(best.e)) t.memo.set(best.e, list = []);
      list.push({ src: best.src, afi, res });
    }
    return res;
  }

  #visit(t: Target, entry: Entry, groups: Map<AttrEntry, Prefix[]>, withdraw: Prefix[]): void {
    const e = this.#exportOne(t, entry);
    const prev = t.adjOut.get(entry.key);
    if (e) {
      if (prev === e) return;
      this.attrs.retain(e);
      if (prev) this.attrs.release(prev);
      t.adjOut.set(entry.key, e);
      let g = groups.get(e);
      if (!g) groups.set(e, g = []);
      g.push(keyPrefix(entry.key));
    } else if (prev) {
      this.attrs.release(prev);
      t.adjOut.delete(entry.key);
      withdraw.push(keyPrefix(entry.key));
    }
  }

  #exportTo(t: Target, dirty: Entry[]): OutBatch[] {
    const groups = new Map<AttrEntry, Prefix[]>();
    const withdraw: Prefix[] = [];
    for (const entry of dirty) this.#visit(t, entry, groups, withdraw);
    return toBatches(groups, withdraw);
  }

  /** Full pass: every prefix, plus the ones that vanished since the last flush. */
  #exportAll(t: Target, dirty: Entry[]): OutBatch[] {
    const groups = new Map<AttrEntry, Prefix[]>();
    const withdraw: Prefix[] = [];
    for (const entry of this.#entries.values()) this.#visit(t, entry, groups, withdraw);
    for (const entry of dirty) if (entry.paths === null) this.#visit(t, entry, groups, withdraw);
    return toBatches(groups, withdraw);
  }

  /** Whether anything waits for `flush`. */
  get pending(): boolean {
    return this.#dirty.length > 0 || this.#fullSync.size > 0;
  }

  /** Loc-RIB read: best path per prefix. */
  *bestRoutes(): Generator<Route> {
    for (const e of this.#entries.values()) if (e.best) yield toRoute(keyPrefix(e.key), e.best);
  }

  /** Best route for one prefix. */
  best(prefix: Prefix): Route | null {
    const e = this.#entries.get(ribKey(prefix));
    return e?.best ? toRoute(keyPrefix(e.key), e.best) : null;
  }

  /** Adj-RIB-In read (after import policy). */
  *sourceRoutes(src: Source): Generator<Route> {
    if (src.count === 0) return;
    for (const e of this.#entries.values()) {
      const p = pathOf(e, src);
      if (p) yield toRoute(keyPrefix(e.key), p);
    }
  }

  /** Adj-RIB-Out read. */
  *targetRoutes(t: Target): Generator<Route> {
    for (const [key, e] of t.adjOut) {
      yield attrsToRoute(keyPrefix(key), e, "local", this.local.asn, t.ebgp, false);
    }
  }
}

/** `src`'s path in `entry`, if any. */
function pathOf(entry: Entry, src: Source): Path | undefined {
  const ps = entry.paths;
  if (ps === null) return undefined;
  if (!Array.isArray(ps)) return ps.src === src ? ps : undefined;
  for (const p of ps) if (p.src === src) return p;
  return undefined;
}

function toBatches(groups: Map<AttrEntry, Prefix[]>, withdraw: Prefix[]): OutBatch[] {
  const by = new Map<Afi, OutBatch>();
  const batch = (afi: Afi) => {
    let b = by.get(afi);
    if (!b) by.set(afi, b = { afi, announce: [], withdraw: [] });
    return b;
  };
  for (const [e, prefixes] of groups) {
    let v4 = 0;
    for (const p of prefixes) if (p.afi === AFI.IPv4) v4++;
    if (v4 === prefixes.length) batch(AFI.IPv4).announce.push({ attrs: e.attrs as RibAttrs, prefixes });
    else if (v4 === 0) batch(AFI.IPv6).announce.push({ attrs: e.attrs as RibAttrs, prefixes });
    else {
      batch(AFI.IPv4).announce.push({
        attrs: e.attrs as RibAttrs,
        prefixes: prefixes.filter((p) => p.afi === AFI.IPv4),
      });
      batch(AFI.IPv6).announce.push({
        attrs: e.attrs as RibAttrs,
        prefixes: prefixes.filter((p) => p.afi === AFI.IPv6),
      });
    }
  }
  for (const p of withdraw) batch(p.afi).withdraw.push(p);
  return [...by.values()];
}

function withNextHop(
  attrs: PathAttributes,
  original: RibAttrs,
  nh: "self" | "unchanged" | string | undefined,
): RibAttrs {
  const out = attrs as RibAttrs;
  if (nh && nh !== "self" && nh !== "unchanged") return { ...out, nextHop: nh };
  return out.nextHop ? out : { ...out, nextHop: original.nextHop };
}

/**
 * Adj-RIB-In per peer, Loc-RIB, Adj-RIB-Out per peer, and the glue between them (RFC 4271 §3.2,
 * §9). Built for a full table (1M prefixes):
 * - attribute sets are interned (`AttrTable`), so a million prefixes from one feed share a handful
 *   of attribute objects and "same attributes?" is a pointer comparison;
 * - import policy and loop checks run once per UPDATE when the policy does not look at prefixes;
 *   export results are memoised per (source, attribute set) per peer for the same reason;
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
import { prefixKey } from "./prefix.ts";
import {
  applyNextHopDirective,
  exportAttrs,
  importLoop,
  importNormalise,
  type LocalFacts,
  type RibAttrs,
  type TargetFacts,
} from "./propagate.ts";

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
  /** Paths from this source, by prefix key (its Adj-RIB-In after import policy). */
  readonly adjIn: Map<string, Path>;
  /** Prefixes received (before policy) currently held. */
  received: number;
}

/** One path in the Loc-RIB candidate set. */
export interface Path extends Candidate {
  readonly src: Source;
  readonly e: AttrEntry;
  stale: boolean;
}

interface Entry {
  readonly prefix: Prefix;
  paths: Path[];
  best: Path | null;
}

/** A peer as an export target. */
export interface Target extends TargetFacts {
  readonly id: number;
  exportPolicy?: Policy;
  families: Afi[];
  /** Adj-RIB-Out: what the peer was last sent, by prefix key. */
  readonly adjOut: Map<string, { prefix: Prefix; e: AttrEntry }>;
  /** Memoised export per "sourceId:attrId" (only when the export policy ignores prefixes). */
  memo: Map<string, AttrEntry | null>;
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

export type BestPathListener = (ev: { prefix: Prefix; best: Route | null }) => void;

/** Turn a path into the API's Route. */
export function toRoute(prefix: Prefix, p: Path): Route {
  const { nextHop, nextHopLinkLocal, ...attrs } = p.e.attrs;
  const r: Route = {
    prefix,
    attrs: attrs as PathAttributes,
    nextHop,
    source: p.src.local ? "local" : p.src.address,
    sourceAsn: p.src.asn,
    ebgp: p.src.ebgp,
    stale: p.stale,
  };
  if (nextHopLinkLocal) r.nextHopLinkLocal = nextHopLinkLocal;
  return r;
}

/** Loc-RIB with its Adj-RIBs. */
export class Rib {
  readonly attrs = new AttrTable();
  readonly #entries = new Map<string, Entry>();
  readonly #dirty = new Map<string, Entry>();
  readonly #targets = new Map<number, Target>();
  readonly #listeners = new Set<BestPathListener>();
  #nextId = 1;

  constructor(public local: LocalFacts) {}

  /** A new path source (a peer or local origination). */
  newSource(facts: SourceFacts, importPolicy?: Policy): Source {
    return { ...facts, id: this.#nextId++, importPolicy, adjIn: new Map(), received: 0 };
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
        this.withdraw(src, prefixes, true);
        return 0;
      }
      const e = this.attrs.intern(withNextHop(r.attrs, normalised, r.nextHop));
      for (const p of prefixes) {
        this.#setPath(src, p, e);
        accepted++;
      }
    } else {
      for (const p of prefixes) {
        const r = applyPolicy(src.importPolicy, p, normalised, src.address);
        if (!r.accept) {
          this.withdraw(src, [p], true);
          continue;
        }
        this.#setPath(src, p, this.attrs.intern(withNextHop(r.attrs, normalised, r.nextHop)));
        accepted++;
      }
    }
    return accepted;
  }

  /** Remove `src`'s paths for these prefixes (explicit withdraw, or import rejection when `rejected`). */
  withdraw(src: Source, prefixes: Prefix[], _rejected = false): void {
    for (const p of prefixes) {
      const key = prefixKey(p);
      const old = src.adjIn.get(key);
      if (!old) continue;
      src.adjIn.delete(key);
      const entry = this.#entries.get(key)!;
      entry.paths = entry.paths.filter((x) => x !== old);
      this.attrs.release(old.e);
      this.#reselect(key, entry);
    }
  }

  #setPath(src: Source, prefix: Prefix, e: AttrEntry): void {
    const key = prefixKey(prefix);
    const old = src.adjIn.get(key);
    if (old && old.e === e && !old.stale) return; // duplicate announcement: nothing changes
    this.attrs.retain(e);
    const path: Path = { src, e, attrs: e.attrs, stale: false };
    src.adjIn.set(key, path);
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { prefix, paths: [path], best: null };
      this.#entries.set(key, entry);
    } else if (old) {
      const i = entry.paths.indexOf(old);
      entry.paths[i] = path;
      this.attrs.release(old.e);
    } else {
      entry.paths.push(path);
    }
    this.#reselect(key, entry);
  }

  #reselect(key: string, entry: Entry): void {
    const best = entry.paths.length === 1 ? entry.paths[0] : selectBest(entry.paths);
    if (best === entry.best) {
      // Same path object: nothing changed for anyone (replacement creates a new object).
      if (entry.paths.length === 0) this.#entries.delete(key);
      return;
    }
    entry.best = best;
    this.#dirty.set(key, entry);
    if (entry.paths.length === 0) this.#entries.delete(key);
  }

  /** Mark every path of `src` stale (graceful restart helper, RFC 4724 §4.2). Returns how many. */
  markStale(src: Source): number {
    for (const p of src.adjIn.values()) p.stale = true;
    return src.adjIn.size;
  }

  /** Remove `src`'s stale paths (End-of-RIB or restart timer), optionally one family only. */
  sweepStale(src: Source, afi?: Afi): number {
    const gone: Prefix[] = [];
    for (const [key, p] of src.adjIn) {
      if (!p.stale) continue;
      const entry = this.#entries.get(key)!;
      if (afi !== undefined && entry.prefix.afi !== afi) continue;
      gone.push(entry.prefix);
    }
    this.withdraw(src, gone);
    return gone.length;
  }

  /** Remove every path of `src` (session down without graceful restart, or peer removed). */
  dropSource(src: Source): void {
    const all: Prefix[] = [];
    for (const key of src.adjIn.keys()) all.push(this.#entries.get(key)!.prefix);
    this.withdraw(src, all);
    src.received = 0;
  }

  /** Start exporting to `t`: every current best path is queued for it. */
  activate(t: Target): void {
    t.active = true;
    this.#clearMemo(t);
    for (const [key, entry] of this.#entries) this.#dirtyFor.set(key, entry);
    this.#fullSync.add(t.id);
  }

  /** Recompute everything sent to `t` (its export policy changed); only differences are sent. */
  reexport(t: Target): void {
    this.#clearMemo(t);
    for (const [key, entry] of this.#entries) this.#dirtyFor.set(key, entry);
    this.#fullSync.add(t.id);
  }

  /** Stop exporting to `t` and forget what it was sent (its Adj-RIB-Out died with the session). */
  deactivate(t: Target): void {
    t.active = false;
    for (const v of t.adjOut.values()) this.attrs.release(v.e);
    t.adjOut.clear();
    this.#clearMemo(t);
    this.#fullSync.delete(t.id);
  }

  #clearMemo(t: Target): void {
    for (const e of t.memo.values()) if (e) this.attrs.release(e);
    t.memo.clear();
  }

  /** Re-send the whole Adj-RIB-Out of `t` (ROUTE-REFRESH received), optionally one family. */
  refreshBatches(t: Target, afi?: Afi): OutBatch[] {
    const groups = new Map<string, { afi: Afi; e: AttrEntry; prefixes: Prefix[] }>();
    for (const v of t.adjOut.values()) {
      if (afi !== undefined && v.prefix.afi !== afi) continue;
      const k = `${v.prefix.afi}:${v.e.id}`;
      let g = groups.get(k);
      if (!g) groups.set(k, g = { afi: v.prefix.afi, e: v.e, prefixes: [] });
      g.prefixes.push(v.prefix);
    }
    const by = new Map<Afi, OutBatch>();
    for (const g of groups.values()) {
      let b = by.get(g.afi);
      if (!b) by.set(g.afi, b = { afi: g.afi, announce: [], withdraw: [] });
      b.announce.push({ attrs: g.e.attrs as RibAttrs, prefixes: g.prefixes });
    }
    return [...by.values()];
  }

  // Entries to export only to targets being fully synced (activate), apart from the global dirty set.
  readonly #dirtyFor = new Map<string, Entry>();
  readonly #fullSync = new Set<number>();

  /**
   * Export everything that changed since the last flush: notify best-path listeners, and compute
   * each active target's outgoing batch against its Adj-RIB-Out. Returns batches per target id.
   */
  flush(): Map<Target, OutBatch[]> {
    const out = new Map<Target, OutBatch[]>();
    const dirty = this.#dirty;
    if (this.#listeners.size) {
      for (const entry of dirty.values()) {
        const ev = { prefix: entry.prefix, best: entry.best ? toRoute(entry.prefix, entry.best) : null };
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
      const full = this.#fullSync.has(t.id);
      const batches = this.#exportTo(t, full ? this.#dirtyFor : dirty, full ? dirty : undefined);
      if (batches.length) out.set(t, batches);
    }
    this.#fullSync.clear();
    this.#dirtyFor.clear();
    dirty.clear();
    return out;
  }

  #exportOne(t: Target, entry: Entry): AttrEntry | null {
    const best = entry.best;
    if (!best || !t.families.includes(entry.prefix.afi)) return null;
    const cacheable = !policyDependsOnPrefix(t.exportPolicy);
    const mk = cacheable ? `${best.src.id}:${best.e.id}:${entry.prefix.afi}` : "";
    if (cacheable) {
      const hit = t.memo.get(mk);
      if (hit !== undefined) return hit;
    }
    let res: AttrEntry | null = null;
    const base = exportAttrs(best.e.attrs as RibAttrs, best.src, t, this.local, entry.prefix.afi);
    if (base) {
      const r = applyPolicy(t.exportPolicy, entry.prefix, base, t.address);
      if (r.accept) {
        const withNh = applyNextHopDirective(
          r.attrs as RibAttrs,
          r.nextHop,
          best.e.attrs as RibAttrs,
          t,
          entry.prefix.afi,
        );
        if (withNh) res = this.attrs.intern(withNh);
      }
    }
    if (cacheable) {
      if (t.memo.size > 50_000) this.#clearMemo(t); // bound it under attribute churn
      if (res) this.attrs.retain(res);
      t.memo.set(mk, res);
    }
    return res;
  }

  #exportTo(t: Target, entries: Map<string, Entry>, also?: Map<string, Entry>): OutBatch[] {
    const groups = new Map<AttrEntry, Prefix[]>();
    const withdraw: Prefix[] = [];
    const visit = (key: string, entry: Entry) => {
      const e = this.#exportOne(t, entry);
      const prev = t.adjOut.get(key);
      if (e) {
        if (prev && prev.e === e) return;
        this.attrs.retain(e);
        if (prev) this.attrs.release(prev.e);
        t.adjOut.set(key, { prefix: entry.prefix, e });
        let g = groups.get(e);
        if (!g) groups.set(e, g = []);
        g.push(entry.prefix);
      } else if (prev) {
        this.attrs.release(prev.e);
        t.adjOut.delete(key);
        withdraw.push(entry.prefix);
      }
    };
    for (const [k, e] of entries) visit(k, e);
    if (also) { for (const [k, e] of also) if (!entries.has(k)) visit(k, e); }
    const by = new Map<Afi, OutBatch>();
    const batch = (afi: Afi) => {
      let b = by.get(afi);
      if (!b) by.set(afi, b = { afi, announce: [], withdraw: [] });
      return b;
    };
    for (const [e, prefixes] of groups) {
      const v4 = prefixes.filter((p) => p.afi === AFI.IPv4);
      const v6 = prefixes.length === v4.length ? [] : prefixes.filter((p) => p.afi === AFI.IPv6);
      if (v4.length) batch(AFI.IPv4).announce.push({ attrs: e.attrs as RibAttrs, prefixes: v4 });
      if (v6.length) batch(AFI.IPv6).announce.push({ attrs: e.attrs as RibAttrs, prefixes: v6 });
    }
    for (const p of withdraw) batch(p.afi).withdraw.push(p);
    return [...by.values()];
  }

  /** Whether anything waits for `flush`. */
  get pending(): boolean {
    return this.#dirty.size > 0 || this.#fullSync.size > 0;
  }

  /** Loc-RIB read: best path per prefix. */
  *bestRoutes(): Generator<Route> {
    for (const e of this.#entries.values()) if (e.best) yield toRoute(e.prefix, e.best);
  }

  /** Best route for one prefix. */
  best(prefix: Prefix): Route | null {
    const e = this.#entries.get(prefixKey(prefix));
    return e?.best ? toRoute(e.prefix, e.best) : null;
  }

  /** Adj-RIB-In read. */
  *sourceRoutes(src: Source): Generator<Route> {
    for (const [key, p] of src.adjIn) yield toRoute(this.#entries.get(key)!.prefix, p);
  }

  /** Adj-RIB-Out read. */
  *targetRoutes(t: Target): Generator<Route> {
    for (const v of t.adjOut.values()) {
      const { nextHop, nextHopLinkLocal, ...attrs } = v.e.attrs;
      yield {
        prefix: v.prefix,
        attrs: attrs as PathAttributes,
        nextHop,
        ...(nextHopLinkLocal ? { nextHopLinkLocal } : {}),
        source: "local",
        sourceAsn: this.local.asn,
        ebgp: t.ebgp,
        stale: false,
      };
    }
  }
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

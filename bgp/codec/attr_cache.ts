/**
 * A cache of decoded attribute sets keyed by their bytes: a full table arrives as many UPDATEs
 * that share a few thousand attribute sets, so decoding each set once saves most of the work and
 * lets identical sets share one object (which also makes interning in a RIB cheap). Lookup hashes
 * the attribute bytes in place (FNV-1a, no allocation) and compares them with the stored copy.
 * Cached results are deep-frozen: callers must copy before changing them (a mutation throws in
 * strict mode instead of corrupting other routes).
 *
 * @module
 */

import type { AttrSetResult } from "./attr_set.ts";

interface Entry {
  flags: number;
  bytes: Uint8Array;
  value: AttrSetResult;
}

/**
 * FNV-1a over the byte ranges `[ents[4i], ents[4i+2])` for
 * i < n (the attribute entries of `update.ts`), seeded with the session flags.
 */
export function hashRanges(b: Uint8Array, ents: Int32Array, n: number, flags: number): number {
  let h = (0x811c9dc5 ^ flags) | 0;
  for (let i = 0; i < n; i++) {
    const end = ents[i * 4 + 2];
    for (let p = ents[i * 4]; p < end; p++) h = Math.imul(h ^ b[p], 0x01000193);
  }
  // Kept within V8's small-integer range so Map lookups do not box the key.
  return (h ^ (h >>> 15)) & 0x3fffffff;
}

function sameBytes(stored: Entry, b: Uint8Array, ents: Int32Array, n: number): boolean {
  const sb = stored.bytes;
  const len = sb.length;
  let k = 0;
  for (let i = 0; i < n; i++) {
    const end = ents[i * 4 + 2];
    let p = ents[i * 4];
    if (k + (end - p) > len) return false;
    for (; p < end; p++, k++) if (sb[k] !== b[p]) return false;
  }
  return k === len;
}

/** Bounded map from attribute bytes to decoded attributes. Pass one per session (or share). */
export class AttributeCache {
  #map = new Map<number, Entry | Entry[]>();
  #size = 0;
  #max: number;
  /** Lookups answered from the cache. */
  hits = 0;
  /** Lookups that had to decode. */
  misses = 0;

  /**
   * A cache of at most `maxEntries` attribute sets.
   * @param maxEntries entries kept before the cache is emptied and refilled.
   */
  constructor(maxEntries = 100_000) {
    this.#max = maxEntries;
  }

  /** The decoded set for these attribute bytes under session `flags`, if cached. */
  lookup(hash: number, flags: number, b: Uint8Array, ents: Int32Array, n: number): AttrSetResult | undefined {
    const slot = this.#map.get(hash);
    if (slot !== undefined) {
      if (!Array.isArray(slot)) {
        if (slot.flags === flags && sameBytes(slot, b, ents, n)) {
          this.hits++;
          return slot.value;
        }
      } else {
        for (const e of slot) {
          if (e.flags === flags && sameBytes(e, b, ents, n)) {
            this.hits++;
            return e.value;
          }
        }
      }
    }
    this.misses++;
    return undefined;
  }

  /** Stores a decoded set (deep-frozen) for these attribute bytes. */
  store(hash: number, flags: number, b: Uint8Array, ents: Int32Array, n: number, value: AttrSetResult): void {
    if (this.#size >= this.#max) this.clear();
    let len = 0;
    for (let i = 0; i < n; i++) len += ents[i * 4 + 2] - ents[i * 4];
    const bytes = new Uint8Array(len);
    let k = 0;
    for (let i = 0; i < n; i++) {
      bytes.set(b.subarray(ents[i * 4], ents[i * 4 + 2]), k);
      k += ents[i * 4 + 2] - ents[i * 4];
    }
    const e: Entry = { flags, bytes, value: deepFreeze(value) };
    const slot = this.#map.get(hash);
    if (slot === undefined) this.#map.set(hash, e);
    else if (Array.isArray(slot)) slot.push(e);
    else this.#map.set(hash, [slot, e]);
    this.#size++;
  }

  /** Number of cached sets. */
  get size(): number {
    return this.#size;
  }

  /** Drops every entry. */
  clear(): void {
    this.#map.clear();
    this.#size = 0;
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object" && !Object.isFrozen(o) && !ArrayBuffer.isView(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v);
  }
  return o;
}

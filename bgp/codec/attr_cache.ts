/**
 * A cache of decoded attribute sets keyed by their bytes: a full table arrives as many UPDATEs
 * that share a few thousand attribute sets, so decoding each set once saves most of the work and
 * lets identical sets share one object. Cached results are deep-frozen: callers must copy before
 * changing them (a mutation throws in strict mode instead of corrupting other routes).
 *
 * @module
 */

import type { AttrSetResult } from "./attr_set.ts";

const latin1 = new TextDecoder("latin1");

/** Bounded map from attribute bytes to decoded attributes. Pass one per session (or share). */
export class AttributeCache {
  #map = new Map<string, AttrSetResult>();
  #max: number;
  hits = 0;
  misses = 0;

  /** @param maxEntries entries kept before the cache is emptied and refilled. */
  constructor(maxEntries = 100_000) {
    this.#max = maxEntries;
  }

  /** The key for byte range `b[s, e)` under a session flag prefix. */
  static key(prefix: string, b: Uint8Array, s: number, e: number): string {
    return prefix + latin1.decode(b.subarray(s, e));
  }

  get(key: string): AttrSetResult | undefined {
    const v = this.#map.get(key);
    if (v) this.hits++;
    else this.misses++;
    return v;
  }

  set(key: string, v: AttrSetResult): void {
    if (this.#map.size >= this.#max) this.#map.clear();
    this.#map.set(key, deepFreeze(v));
  }

  get size(): number {
    return this.#map.size;
  }

  clear(): void {
    this.#map.clear();
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object" && !Object.isFrozen(o) && !ArrayBuffer.isView(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v);
  }
  return o;
}

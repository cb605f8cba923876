/**
 * Gives the memory a burst of work freed back to the operating system once the agent is quiet.
 *
 * Why: a sync burst (the initial lists, a full plan, `iptables-save` and `ipset` outputs read
 * into buffers) leaves garbage that nothing reclaims while the agent idles: V8 runs a major
 * collection only when its old generation reaches a limit, which a small node's agent does not
 * reach after start-up, so the garbage and the pages under it stay resident. Go's runtime returns
 * such memory by itself (its scavenger); this is our equivalent: one full collection, V8's
 * "last resort" kind (`gc()`, exposed by `--expose-gc` in `options/v8_flags.ts`), which compacts
 * the heap and releases the emptied pages and the ArrayBuffers that only garbage held. Measured
 * at 300 pods (`bench/upstream.ts`): the firewall agent 5-6 MB less resident, for one ~30 ms pause.
 *
 * glibc's `malloc_trim` was measured too and left out: it freed ~1.5 MB more, and loading libc
 * through the FFI cost the firewall agent ~2 MB of code.
 *
 * When: `quietMs` after the last run of any lane, never within `minIntervalMs` of the last trim,
 * so a busy agent (the router under churn) is never interrupted and a collection costs at most
 * one pause a minute. Only while the live heap is under `maxHeapBytes` (64 MB): the collection
 * stops the main thread for ~3 ms per live MB, start-up garbage matters only to a small agent,
 * and a large one (a full BGP table) is collected by V8's own heuristics without a pause long
 * enough to miss a BFD packet. Without `gc` (a run without the shipped V8 flags) it does nothing.
 *
 * @module
 */
import { type Clock, realClock, type TimerId } from "./runner.ts";

export interface MemoryTrimOptions {
  clock?: Clock;
  /** Trim this long after the last noted work, ms. Default 1 s. */
  quietMs?: number;
  /** Least time between two trims, ms. Default 60 s. */
  minIntervalMs?: number;
  /** No trim while the live heap is larger than this, bytes. Default 64 MiB. */
  maxHeapBytes?: number;
  /** The full collection; default: V8's `gc()` when the process runs with `--expose-gc`. */
  gc?: () => void;
  /** The live heap, bytes; default: `Deno.memoryUsage().heapUsed`. */
  heapUsed?: () => number;
  /** Told after each trim: resident bytes before and after, and the time it took in ms. */
  onTrim?: (rssBefore: number, rssAfter: number, ms: number) => void;
}

export class MemoryTrimmer {
  readonly #clock: Clock;
  readonly #quietMs: number;
  readonly #minIntervalMs: number;
  readonly #maxHeapBytes: number;
  readonly #gc: (() => void) | undefined;
  readonly #heapUsed: () => number;
  readonly #onTrim: MemoryTrimOptions["onTrim"];
  #timer: TimerId | undefined;
  #lastTrim = -Infinity;
  #stopped = false;
  #trims = 0;

  constructor(opts: MemoryTrimOptions = {}) {
    this.#clock = opts.clock ?? realClock;
    this.#quietMs = opts.quietMs ?? 1_000;
    this.#minIntervalMs = opts.minIntervalMs ?? 60_000;
    this.#maxHeapBytes = opts.maxHeapBytes ?? 64 * 2 ** 20;
    this.#gc = opts.gc ?? exposedGc();
    this.#heapUsed = opts.heapUsed ?? (() => Deno.memoryUsage().heapUsed);
    this.#onTrim = opts.onTrim;
  }

  /** Work just ended: (re)schedules the trim for the end of the quiet time. */
  noteWork(): void {
    if (this.#stopped || !this.#gc) return;
    const now = this.#clock.now();
    const at = Math.max(now + this.#quietMs, this.#lastTrim + this.#minIntervalMs);
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => this.#trim(), at - now);
    // A pending trim never keeps the process alive.
    if (this.#clock === realClock) Deno.unrefTimer(this.#timer as unknown as number);
  }

  /** Trims done. */
  get trims(): number {
    return this.#trims;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #trim(): void {
    this.#timer = undefined;
    this.#lastTrim = this.#clock.now();
    if (this.#heapUsed() > this.#maxHeapBytes) return;
    const before = Deno.memoryUsage().rss;
    const t0 = performance.now();
    this.#gc!();
    this.#trims++;
    this.#onTrim?.(before, Deno.memoryUsage().rss, performance.now() - t0);
  }
}

/** V8's `gc()`, present when the process runs with `--expose-gc`. */
function exposedGc(): (() => void) | undefined {
  const gc = (globalThis as { gc?: (options?: object) => void }).gc;
  if (typeof gc !== "function") return undefined;
  // "last-resort": collect-all-available-garbage (repeated until nothing more is freed, pooled
  // pages released); a plain major collection gave back under 1 MB of the 5-6.
  return () => gc({ type: "major", execution: "sync", flavor: "last-resort" });
}

/**
 * One runner per controller: the bounded-frequency loop that turns snapshot changes and the
 * periodic resync into `sync` calls.
 *
 * - Does not sync before the source's initial lists are complete.
 * - Coalesces: however many changes arrive while a sync runs (or within `minIntervalMs` of the
 *   last one), exactly one more sync follows, against the newest snapshot.
 * - Retries a failed sync with capped exponential back-off; a success resets it.
 * - Resyncs every `controller.syncPeriodMs` even without changes (repairs drift).
 * - Reports each successful sync to `onSynced` (health) and times it (metrics).
 *
 * @module
 */
import type { Controller } from "./controller.ts";
import type { SnapshotSource } from "../watch/store.ts";

/** The clock and timers the runner uses, injectable for tests. */
/** A timer handle (Node typings, pulled in by client-node, make it an object rather than a number). */
export type TimerId = ReturnType<typeof setTimeout>;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerId;
  clearTimeout(id: TimerId): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
};

export interface RunnerOptions {
  signal: AbortSignal;
  clock?: Clock;
  /** Least time between the starts of two syncs (burst coalescing), ms. Default 100. */
  minIntervalMs?: number;
  backoff?: { initialMs: number; maxMs: number };
  onSynced?: (controller: string, at: number) => void;
  onError?: (controller: string, error: unknown, retryInMs: number) => void;
  onSyncDuration?: (controller: string, seconds: number) => void;
}

export interface RunnerHandle {
  /** Resolves after the first successful sync. */
  readonly firstSync: Promise<void>;
  /** Requests a sync now (coalesced like any change). */
  trigger(): void;
  /** Number of syncs started, for tests and metrics. */
  readonly syncs: number;
  /** Resolves when the runner stopped (signal aborted and the running sync finished). */
  readonly done: Promise<void>;
}

export function runController(
  controller: Controller,
  source: SnapshotSource,
  opts: RunnerOptions,
): RunnerHandle {
  const clock = opts.clock ?? realClock;
  const minInterval = opts.minIntervalMs ?? 100;
  const { initialMs, maxMs } = opts.backoff ?? { initialMs: 1000, maxMs: 60_000 };
  let running = false;
  let pending = false;
  /** The next periodic resync or retry. */
  let timer: TimerId | undefined;
  /** Wakes a pending sync once `minIntervalMs` has passed since the last start. */
  let delayTimer: TimerId | undefined;
  let lastStart = -Infinity;
  let retryDelay = initialMs;
  let syncs = 0;
  let resolveFirst!: () => void;
  let resolveDone!: () => void;
  const firstSync = new Promise<void>((r) => (resolveFirst = r));
  const done = new Promise<void>((r) => (resolveDone = r));
  let started = false;

  const arm = (ms: number) => {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = clock.setTimeout(() => {
      timer = undefined;
      pending = true;
      kick();
    }, Math.max(0, ms));
  };

  const kick = () => {
    if (opts.signal.aborted || running || !started || !pending) return;
    const wait = lastStart + minInterval - clock.now();
    if (wait > 0) {
      if (delayTimer === undefined) {
        delayTimer = clock.setTimeout(() => {
          delayTimer = undefined;
          kick();
        }, wait);
      }
      return;
    }
    pending = false;
    running = true;
    lastStart = clock.now();
    syncs++;
    const t0 = performance.now();
    controller.sync(source.current(), opts.signal).then(
      () => {
        opts.onSyncDuration?.(controller.name, (performance.now() - t0) / 1000);
        retryDelay = initialMs;
        opts.onSynced?.(controller.name, clock.now());
        resolveFirst();
        if (!pending) arm(controller.syncPeriodMs);
      },
      (err) => {
        opts.onError?.(controller.name, err, retryDelay);
        if (!pending) arm(retryDelay);
        retryDelay = Math.min(retryDelay * 2, maxMs);
      },
    ).finally(() => {
      running = false;
      if (opts.signal.aborted) resolveDone();
      else kick();
    });
  };

  const unsubscribe = source.subscribe((change) => {
    if (controller.interestedIn(change.kinds)) {
      pending = true;
      kick();
    }
  });
  opts.signal.addEventListener("abort", () => {
    unsubscribe();
    if (timer !== undefined) clock.clearTimeout(timer);
    if (delayTimer !== undefined) clock.clearTimeout(delayTimer);
    if (!running) resolveDone();
  }, { once: true });

  source.ready.then(() => {
    started = true;
    pending = true;
    kick();
  });

  return {
    firstSync,
    done,
    trigger() {
      pending = true;
      kick();
    },
    get syncs() {
      return syncs;
    },
  };
}

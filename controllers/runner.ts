/**
 * The one way into a controller's work: a bounded-frequency runner (the shape of kube-proxy's
 * `BoundedFrequencyRunner`), used as named lanes.
 *
 * A lane runs one function, never two runs at once:
 * - `trigger()` asks for a run; however many requests arrive while a run is in progress (or
 *   within `minIntervalMs` of the last start, or `batchMs` of the first request), exactly one
 *   more run follows.
 * - `triggerAt(ms)` asks for a run at a clock time (a drain deadline, a debounce); the earliest
 *   requested time wins.
 * - `run()` asks for a run and waits for it (a caller that owns its own retrying, like the
 *   spine's sync lane calling a controller's `sync`): it gets the run's error.
 * - A failed run nobody waited for is retried with capped exponential back-off; a success
 *   resets it.
 * - `periodMs` re-runs the function that long after the last run even without requests.
 * - Time comes from an injectable clock (tests drive it by hand).
 *
 * `runController` is the spine's lane per controller: snapshot changes and the periodic resync
 * turn into `sync` calls. `laneFactory` builds `ControllerContext.lane`, which wires every lane
 * of a controller to the log, metrics and health once.
 *
 * @module
 */
import type { Controller, ControllerContext } from "./controller.ts";
import type { SnapshotSource } from "../watch/store.ts";
import type { Logger } from "../observe/log.ts";
import type { MetricsRegistry } from "../observe/metrics.ts";

/** A timer handle (Node typings, pulled in by client-node, make it an object rather than a number). */
export type TimerId = ReturnType<typeof setTimeout>;

/** The clock and timers a lane uses, injectable for tests. */
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

export interface LaneOptions {
  clock?: Clock;
  /** Least time between the starts of two runs, ms. Default 0. */
  minIntervalMs?: number;
  /** A request waits this long for more requests to join it (burst coalescing), ms. Default 0. */
  batchMs?: number;
  /** Re-run this long after the last run even without requests, ms; 0 or absent: never. */
  periodMs?: number;
  /** Retry of a failed run nobody waited for. Default 1 s doubling to 60 s. */
  backoff?: { initialMs: number; maxMs: number };
  /** Runs nothing before this (the spine waits for the initial lists); default: start at once. */
  startAfter?: Promise<unknown>;
  signal?: AbortSignal;
  onSuccess?: (at: number, seconds: number) => void;
  onError?: (error: unknown, retryInMs: number | undefined) => void;
}

export interface Lane {
  /** Asks for a run (coalesced). */
  trigger(): void;
  /** Asks for a run at clock time `ms` (or now, if that has passed); the earliest request wins. */
  triggerAt(ms: number): void;
  /** Asks for a run and resolves (or rejects) with the first run that starts after this call. */
  run(): Promise<void>;
  /** Resolves once no run is in progress or due soon (requests, batch and min-interval waits; not
   * `triggerAt`, period or retry timers). */
  idle(): Promise<void>;
  /** Runs started. */
  readonly runs: number;
  /** Cancels timers; resolves when the run in progress (if any) finished. */
  stop(): Promise<void>;
}

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

/** A bounded-frequency runner of `fn`. */
export function boundedRunner(fn: () => Promise<void>, opts: LaneOptions = {}): Lane {
  const clock = opts.clock ?? realClock;
  const minInterval = opts.minIntervalMs ?? 0;
  const batch = opts.batchMs ?? 0;
  const period = opts.periodMs ?? 0;
  const { initialMs, maxMs } = opts.backoff ?? { initialMs: 1000, maxMs: 60_000 };
  let started = opts.startAfter === undefined;
  let stopped = false;
  let running: Promise<void> | null = null;
  /** A run was asked for, since this clock time (undefined: none pending). */
  let pendingSince: number | undefined;
  /** Waiters for the next run to start. */
  let waiters: Waiter[] = [];
  let idleWaiters: Array<() => void> = [];
  /** Wakes a pending run once its batch/min-interval wait is over. */
  let soonTimer: TimerId | undefined;
  /** Period or retry. */
  let laterTimer: TimerId | undefined;
  /** `triggerAt`: the earliest requested time and its timer. */
  let atTimer: TimerId | undefined;
  let atTime = Infinity;
  let lastStart = -Infinity;
  let retryDelay = initialMs;
  let runs = 0;

  const isIdle = () => running === null && (pendingSince === undefined || !started || stopped);
  const checkIdle = () => {
    if (!isIdle()) return;
    const w = idleWaiters;
    idleWaiters = [];
    for (const r of w) r();
  };

  const request = () => {
    if (pendingSince === undefined) pendingSince = clock.now();
    kick();
  };

  const armLater = (ms: number) => {
    if (laterTimer !== undefined) clock.clearTimeout(laterTimer);
    laterTimer = clock.setTimeout(() => {
      laterTimer = undefined;
      request();
    }, Math.max(0, ms));
  };

  const kick = () => {
    if (stopped || running || !started || pendingSince === undefined) return;
    const now = clock.now();
    // A caller waiting for the run (`run()`) does not wait for a burst to join it.
    const wait = Math.max(lastStart + minInterval - now, waiters.length ? 0 : pendingSince + batch - now);
    if (wait > 0) {
      if (soonTimer === undefined) {
        soonTimer = clock.setTimeout(() => {
          soonTimer = undefined;
          kick();
        }, wait);
      }
      return;
    }
    if (soonTimer !== undefined) clock.clearTimeout(soonTimer);
    soonTimer = undefined;
    if (laterTimer !== undefined) clock.clearTimeout(laterTimer);
    laterTimer = undefined;
    if (atTime <= now) {
      if (atTimer !== undefined) clock.clearTimeout(atTimer);
      atTimer = undefined;
      atTime = Infinity;
    }
    pendingSince = undefined;
    const mine = waiters;
    waiters = [];
    lastStart = now;
    runs++;
    const t0 = performance.now();
    running = (async () => {
      try {
        await fn();
        retryDelay = initialMs;
        opts.onSuccess?.(clock.now(), (performance.now() - t0) / 1000);
        for (const w of mine) w.resolve();
        if (pendingSince === undefined && period > 0 && !stopped) armLater(period);
      } catch (e) {
        // A waiter owns retrying its own failure; a run nobody waited for is retried here.
        const retry = mine.length === 0 && !stopped ? retryDelay : undefined;
        opts.onError?.(e, retry);
        for (const w of mine) w.reject(e);
        if (retry !== undefined) {
          if (pendingSince === undefined) armLater(retry);
          retryDelay = Math.min(retryDelay * 2, maxMs);
        } else if (pendingSince === undefined && period > 0 && !stopped) armLater(period);
      }
    })();
    running.finally(() => {
      running = null;
      kick();
      checkIdle();
    });
  };

  const stop = () => {
    if (stopped) return running ?? Promise.resolve();
    stopped = true;
    for (const t of [soonTimer, laterTimer, atTimer]) if (t !== undefined) clock.clearTimeout(t);
    soonTimer = laterTimer = atTimer = undefined;
    const w = waiters;
    waiters = [];
    for (const x of w) x.reject(new Error("lane stopped"));
    checkIdle();
    return (running ?? Promise.resolve()).catch(() => {});
  };

  opts.signal?.addEventListener("abort", () => void stop(), { once: true });
  opts.startAfter?.then(() => {
    started = true;
    kick();
  });

  return {
    trigger: request,
    triggerAt(ms: number) {
      if (stopped) return;
      const now = clock.now();
      if (ms <= now) return request();
      if (ms >= atTime) return;
      if (atTimer !== undefined) clock.clearTimeout(atTimer);
      atTime = ms;
      atTimer = clock.setTimeout(() => {
        atTimer = undefined;
        atTime = Infinity;
        request();
      }, ms - now);
    },
    run() {
      if (stopped) return Promise.reject(new Error("lane stopped"));
      const p = new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }));
      request();
      return p;
    },
    idle() {
      if (isIdle()) return Promise.resolve();
      return new Promise<void>((r) => idleWaiters.push(r));
    },
    get runs() {
      return runs;
    },
    stop,
  };
}

/** Builds lanes wired to one controller's log, metrics and (for lanes that ask) health. */
export type LaneFactory = (
  name: string,
  fn: () => Promise<void>,
  opts?: LaneOptions & { health?: boolean },
) => Lane;

export interface LaneWiring {
  controller: string;
  log: Logger;
  metrics: MetricsRegistry;
  clock?: Clock;
  signal?: AbortSignal;
  /** A successful run of a lane opened with `health: true` beats the controller's health. */
  beat?: (controller: string, at: number) => void;
  /** Told after every run of every lane, failed or not (the agent's memory trim waits for quiet). */
  afterRun?: () => void;
}

/** The lanes of one controller: every lane's errors are logged and counted, runs timed. */
export function laneFactory(w: LaneWiring): LaneFactory {
  const runs = w.metrics.counter(
    "kube_router_lane_runs_total",
    "Successful runs of a controller's lane",
    ["controller", "lane"],
  );
  const seconds = w.metrics.counter(
    "kube_router_lane_run_seconds_total",
    "Time spent in successful runs of a controller's lane (seconds)",
    ["controller", "lane"],
  );
  const errors = w.metrics.counter(
    "kube_router_lane_errors_total",
    "Failed runs of a controller's lane",
    ["controller", "lane"],
  );
  return (name, fn, opts = {}) => {
    const labels = { controller: w.controller, lane: name };
    return boundedRunner(fn, {
      clock: w.clock,
      signal: w.signal,
      ...opts,
      onSuccess: (at, s) => {
        runs.inc(labels);
        seconds.inc(labels, s);
        if (opts.health) w.beat?.(w.controller, at);
        opts.onSuccess?.(at, s);
        w.afterRun?.();
      },
      onError: (e, retry) => {
        errors.inc(labels);
        w.afterRun?.();
        if (retry !== undefined) {
          w.log.error("{lane} failed, retrying in {retry} ms: {error}", {
            lane: name,
            retry,
            error: e instanceof Error ? e.message : String(e),
          });
        }
        opts.onError?.(e, retry);
      },
    });
  };
}

/** A controller's lane: through its context's factory, or one wired to its log and metrics. */
export function openLane(
  ctx: Pick<ControllerContext, "lane" | "log" | "metrics">,
  controller: string,
  name: string,
  fn: () => Promise<void>,
  opts?: LaneOptions & { health?: boolean },
): Lane {
  const f = ctx.lane ?? laneFactory({ controller, log: ctx.log, metrics: ctx.metrics });
  return f(name, fn, opts);
}

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
  /** Requests a sync at clock time `ms`. */
  triggerAt(ms: number): void;
  /** Number of syncs started, for tests and metrics. */
  readonly syncs: number;
  /** Resolves when the runner stopped (signal aborted and the running sync finished). */
  readonly done: Promise<void>;
}

/**
 * The spine's lane of one controller: no sync before the source's initial lists are complete;
 * each interesting change asks for one; a sync `controller.syncPeriodMs` after the last even
 * without changes (repairs drift); failures retried with back-off.
 */
export function runController(
  controller: Controller,
  source: SnapshotSource,
  opts: RunnerOptions,
): RunnerHandle {
  let resolveFirst!: () => void;
  let resolveDone!: () => void;
  const firstSync = new Promise<void>((r) => (resolveFirst = r));
  const done = new Promise<void>((r) => (resolveDone = r));
  const lane = boundedRunner(() => controller.sync(source.current(), opts.signal), {
    clock: opts.clock,
    minIntervalMs: opts.minIntervalMs ?? 100,
    periodMs: controller.syncPeriodMs,
    backoff: opts.backoff,
    startAfter: source.ready,
    onSuccess: (at, s) => {
      opts.onSyncDuration?.(controller.name, s);
      opts.onSynced?.(controller.name, at);
      resolveFirst();
    },
    onError: (e, retry) => opts.onError?.(controller.name, e, retry ?? 0),
  });
  const unsubscribe = source.subscribe((change) => {
    if (controller.interestedIn(change.kinds)) lane.trigger();
  });
  lane.trigger();
  opts.signal.addEventListener("abort", () => {
    unsubscribe();
    lane.stop().then(() => resolveDone());
  }, { once: true });
  return {
    firstSync,
    done,
    trigger: () => lane.trigger(),
    triggerAt: (ms) => lane.triggerAt(ms),
    get syncs() {
      return lane.runs;
    },
  };
}

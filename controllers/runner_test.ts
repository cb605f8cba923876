import assert from "node:assert/strict";
import { boundedRunner, runController } from "./runner.ts";
import { FakeClock, settle } from "./fake_clock.ts";
import type { Controller } from "./controller.ts";
import { SnapshotStore } from "../watch/store.ts";
import type { ClusterSnapshot, NamespaceInfo } from "../watch/types.ts";

function fakeController(opts: { fail?: () => boolean; period?: number } = {}) {
  const seen: number[] = [];
  const c: Controller = {
    name: "fake",
    syncPeriodMs: opts.period ?? 60_000,
    interestedIn: (kinds) => kinds.has("Namespace"),
    sync(s: ClusterSnapshot) {
      seen.push(s.revision);
      return opts.fail?.() ? Promise.reject(new Error("boom")) : Promise.resolve();
    },
  };
  return { c, seen };
}

async function readyStore() {
  const store = new SnapshotStore();
  store.markSynced();
  store.flush();
  await store.ready;
  return store;
}

const ns = (name: string): NamespaceInfo => ({ name, labels: {} });

Deno.test("runner: waits for the initial lists, then syncs once", async () => {
  const store = new SnapshotStore();
  const clock = new FakeClock();
  const { c, seen } = fakeController();
  const abort = new AbortController();
  runController(c, store, { signal: abort.signal, clock });
  await clock.advance(10_000);
  assert.deepEqual(seen, [], "no sync before the source is ready");
  store.markSynced();
  store.flush();
  await clock.advance(0);
  assert.deepEqual(seen, [1]);
  abort.abort();
});

Deno.test("runner: a burst of 1000 changes becomes one more sync with the newest snapshot", async () => {
  const store = await readyStore();
  const clock = new FakeClock();
  const { c, seen } = fakeController();
  const abort = new AbortController();
  const h = runController(c, store, { signal: abort.signal, clock, minIntervalMs: 100 });
  await clock.advance(0);
  assert.equal(seen.length, 1);
  for (let i = 0; i < 1000; i++) {
    store.upsert("Namespace", `ns-${i}`, ns(`ns-${i}`));
    if (i % 100 === 0) store.flush();
  }
  store.flush();
  await clock.advance(100);
  assert.equal(h.syncs, 2, `expected 2 syncs, got ${seen}`);
  assert.equal(seen.at(-1), store.current().revision);
  assert.equal(store.current().namespaces.size, 1000);
  abort.abort();
});

Deno.test("runner: ignores kinds the controller does not care about", async () => {
  const store = await readyStore();
  const clock = new FakeClock();
  const { c, seen } = fakeController();
  const abort = new AbortController();
  runController(c, store, { signal: abort.signal, clock });
  await clock.advance(0);
  store.upsert("Pod", "a/b", { name: "b" });
  store.flush();
  await clock.advance(1000);
  assert.equal(seen.length, 1);
  abort.abort();
});

Deno.test("runner: retries with exponential back-off, then resyncs on the period", async () => {
  const store = await readyStore();
  const clock = new FakeClock();
  let failures = 3;
  const { c, seen } = fakeController({ fail: () => failures-- > 0, period: 60_000 });
  const errors: number[] = [];
  const abort = new AbortController();
  runController(c, store, {
    signal: abort.signal,
    clock,
    backoff: { initialMs: 1000, maxMs: 10_000 },
    onError: (_n, _e, retry) => errors.push(retry),
  });
  await clock.advance(0);
  await clock.advance(1000);
  await clock.advance(2000);
  await clock.advance(4000);
  assert.deepEqual(errors, [1000, 2000, 4000]);
  assert.equal(seen.length, 4, "three failures then a success");
  await clock.advance(59_999);
  assert.equal(seen.length, 4);
  await clock.advance(1);
  assert.equal(seen.length, 5, "periodic resync");
  abort.abort();
});

Deno.test("store: unchanged re-deliveries publish nothing; deletes do", async () => {
  const store = await readyStore();
  const revs: number[] = [];
  store.subscribe((ch) => revs.push(ch.snapshot.revision));
  store.upsert("Namespace", "a", ns("a"));
  store.flush();
  store.upsert("Namespace", "a", ns("a"));
  store.flush();
  assert.deepEqual(revs, [2]);
  const held = store.current();
  store.remove("Namespace", "a");
  store.flush();
  assert.deepEqual(revs, [2, 3]);
  assert.equal(held.namespaces.has("a"), true, "a snapshot held by a controller never changes");
  assert.equal(store.current().namespaces.has("a"), false);
});

/** A function whose runs the test ends by hand, recording start times and overlap. */
function gatedFn(clock: FakeClock) {
  const starts: number[] = [];
  let active = 0, maxActive = 0;
  let release: Array<(ok: boolean) => void> = [];
  const fn = () => {
    starts.push(clock.now());
    active++;
    maxActive = Math.max(maxActive, active);
    return new Promise<void>((res, rej) =>
      release.push((ok) => {
        active--;
        if (ok) res();
        else rej(new Error("boom"));
      })
    );
  };
  const finish = async (ok = true) => {
    const r = release;
    release = [];
    for (const f of r) f(ok);
    await settle();
  };
  return {
    fn,
    starts,
    finish,
    get maxActive() {
      return maxActive;
    },
  };
}

Deno.test("lane: runs never overlap; requests during a run become exactly one more run", async () => {
  const clock = new FakeClock();
  const g = gatedFn(clock);
  const lane = boundedRunner(g.fn, { clock });
  lane.trigger();
  await settle();
  for (let i = 0; i < 50; i++) {
    lane.trigger();
    lane.triggerAt(clock.now());
  }
  const waited = lane.run();
  await clock.advance(10);
  assert.equal(g.starts.length, 1);
  await g.finish();
  assert.equal(g.starts.length, 2);
  await g.finish();
  await waited;
  await clock.advance(1000);
  assert.equal(g.starts.length, 2);
  assert.equal(g.maxActive, 1);
  await lane.idle();
  await lane.stop();
});

Deno.test("lane: minimum interval between starts is honoured; batch waits for a burst", async () => {
  const clock = new FakeClock();
  const g = gatedFn(clock);
  const lane = boundedRunner(g.fn, { clock, minIntervalMs: 100 });
  lane.trigger();
  await settle();
  await g.finish();
  await clock.advance(10);
  lane.trigger();
  await clock.advance(50);
  assert.deepEqual(g.starts, [0]);
  await clock.advance(40);
  assert.deepEqual(g.starts, [0, 100]);
  await g.finish();
  await lane.stop();

  const c2 = new FakeClock();
  const g2 = gatedFn(c2);
  const batched = boundedRunner(g2.fn, { clock: c2, batchMs: 2 });
  batched.trigger();
  await c2.advance(1);
  batched.trigger();
  assert.deepEqual(g2.starts, []);
  const idle = batched.idle();
  await c2.advance(1);
  assert.deepEqual(g2.starts, [2]);
  await g2.finish();
  await idle;
  await batched.stop();
});

Deno.test("lane: a failure nobody waited for backs off exponentially; success resets; a waiter gets the error", async () => {
  const clock = new FakeClock();
  let fail = true;
  const starts: number[] = [];
  const errors: Array<number | undefined> = [];
  const lane = boundedRunner(() => {
    starts.push(clock.now());
    return fail ? Promise.reject(new Error("boom")) : Promise.resolve();
  }, { clock, backoff: { initialMs: 100, maxMs: 400 }, onError: (_e, retry) => errors.push(retry) });
  lane.trigger();
  await settle();
  await clock.advance(1000);
  assert.deepEqual(starts, [0, 100, 300, 700]);
  assert.deepEqual(errors, [100, 200, 400, 400]);
  fail = false;
  await clock.advance(400);
  assert.deepEqual(starts, [0, 100, 300, 700, 1100]);
  await clock.advance(10_000);
  assert.equal(starts.length, 5, "no period, no retry after a success");
  fail = true;
  await assert.rejects(lane.run(), /boom/);
  assert.equal(errors.at(-1), undefined, "the waiter owns the retry");
  await clock.advance(10_000);
  assert.equal(starts.length, 6);
  await lane.stop();
});

Deno.test("lane: triggerAt runs at the earliest requested time; the period re-runs after the last run", async () => {
  const clock = new FakeClock();
  const starts: number[] = [];
  const lane = boundedRunner(() => {
    starts.push(clock.now());
    return Promise.resolve();
  }, { clock, periodMs: 1000 });
  lane.triggerAt(500);
  lane.triggerAt(300);
  lane.triggerAt(800);
  await clock.advance(299);
  assert.deepEqual(starts, []);
  await clock.advance(1);
  assert.deepEqual(starts, [300]);
  // A run for another reason keeps a later triggerAt.
  lane.triggerAt(900);
  lane.trigger();
  await settle();
  assert.deepEqual(starts, [300, 300]);
  await clock.advance(600);
  assert.deepEqual(starts, [300, 300, 900]);
  await clock.advance(1000);
  assert.deepEqual(starts, [300, 300, 900, 1900]);
  await clock.advance(1000);
  assert.deepEqual(starts, [300, 300, 900, 1900, 2900]);
  await lane.stop();
  await clock.advance(5000);
  assert.equal(starts.length, 5, "a stopped lane runs nothing");
});

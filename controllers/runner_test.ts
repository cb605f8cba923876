import assert from "node:assert/strict";
import { type Clock, runController, type TimerId } from "./runner.ts";
import type { Controller } from "./controller.ts";
import { SnapshotStore } from "../watch/store.ts";
import type { ClusterSnapshot, NamespaceInfo } from "../watch/types.ts";

/** A manual clock: timers fire only when the test advances time. */
class FakeClock implements Clock {
  t = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  private next = 1;
  now() {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.next++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id as unknown as TimerId;
  }
  clearTimeout(id: TimerId) {
    this.timers.delete(id as unknown as number);
  }
  async advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers].filter(([, v]) => v.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

const settle = () => new Promise((r) => setTimeout(r, 0));

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

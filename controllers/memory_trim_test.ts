import assert from "node:assert/strict";
import { FakeClock } from "./fake_clock.ts";
import { MemoryTrimmer } from "./memory_trim.ts";

function trimmer(clock: FakeClock) {
  const at: number[] = [];
  const t = new MemoryTrimmer({
    clock,
    quietMs: 1_000,
    minIntervalMs: 60_000,
    heapUsed: () => 0,
    gc: () => at.push(clock.now()),
  });
  return { t, at };
}

Deno.test("memory trim: one collection once the work has been quiet for quietMs", async () => {
  const clock = new FakeClock();
  const { t, at } = trimmer(clock);
  t.noteWork();
  await clock.advance(500);
  t.noteWork(); // more work pushes it out
  await clock.advance(900);
  assert.deepEqual(at, []);
  await clock.advance(100);
  assert.deepEqual(at, [1_500]);
  await clock.advance(120_000);
  assert.deepEqual(at, [1_500], "no work, no more collections");
});

Deno.test("memory trim: at most one a minute however the work comes", async () => {
  const clock = new FakeClock();
  const { t, at } = trimmer(clock);
  t.noteWork();
  await clock.advance(1_000);
  // Work every 3 s for 75 s: quiet seconds come, but a trim waits for the minute to pass.
  for (let i = 0; i < 25; i++) {
    t.noteWork();
    await clock.advance(3_000);
  }
  assert.deepEqual(at, [1_000, 61_000]);
  assert.equal(t.trims, 2);
});

Deno.test("memory trim: nothing after stop, and nothing without a gc to call", async () => {
  const clock = new FakeClock();
  const { t, at } = trimmer(clock);
  t.noteWork();
  t.stop();
  t.noteWork();
  await clock.advance(120_000);
  assert.deepEqual(at, []);
  // This test process runs without --expose-gc: the trimmer finds no gc and schedules nothing.
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, "undefined");
  const none = new MemoryTrimmer({ clock });
  none.noteWork();
  await clock.advance(120_000);
  assert.equal(none.trims, 0);
});

Deno.test("memory trim: none while the live heap is over the bound, and again once it is under", async () => {
  const clock = new FakeClock();
  const at: number[] = [];
  let heap = 200 * 2 ** 20;
  const t = new MemoryTrimmer({
    clock,
    maxHeapBytes: 64 * 2 ** 20,
    heapUsed: () => heap,
    gc: () => at.push(clock.now()),
  });
  t.noteWork();
  await clock.advance(5_000);
  assert.deepEqual(at, []);
  heap = 20 * 2 ** 20;
  t.noteWork();
  await clock.advance(70_000);
  assert.deepEqual(at, [61_000], "the skipped trim still counts for the interval");
});

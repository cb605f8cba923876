import assert from "node:assert/strict";
import fc from "fast-check";
import { formatGoDuration, parseGoDuration } from "./go_text.ts";

Deno.test("flags: Go durations parse and print like time.Duration", () => {
  for (
    const [text, ms] of [
      ["1m0s", 60_000],
      ["300ms", 300],
      ["1.5h", 5_400_000],
      ["1h2m3s", 3_723_000],
      ["0", 0],
      ["90s", 90_000],
      ["1500us", 1.5],
    ] as const
  ) {
    assert.equal(parseGoDuration(text), ms, text);
  }
  assert.equal(formatGoDuration(300_000), "5m0s");
  assert.equal(formatGoDuration(90_000), "1m30s");
  assert.equal(formatGoDuration(0), "0s");
  assert.equal(formatGoDuration(7_200_000), "2h0m0s");
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 10 ** 9 }),
      (s) => parseGoDuration(formatGoDuration(s * 1000)) === s * 1000,
    ),
  );
  assert.throws(() => parseGoDuration("5"), /invalid duration/);
  assert.throws(() => parseGoDuration("5 m"), /invalid duration/);
});

/** IPVS stats parser on hand-written samples (no IPVS in this kernel). Addresses: documentation ranges. */
import assert from "node:assert/strict";
import { joinStats, parseStatsTable, statsKey } from "./stats.ts";

const dir = new URL("../../tests/fixtures/ipvs_samples/", import.meta.url);

Deno.test("ipvs stats: services joined with their rates, real servers ignored", async () => {
  const s = joinStats(
    await Deno.readTextFile(new URL("stats_exact.txt", dir)),
    await Deno.readTextFile(new URL("rate_exact.txt", dir)),
  );
  assert.deepEqual([...s.keys()], [
    "TCP 10.96.0.1:443",
    "UDP 10.96.0.10:53",
    "TCP [2001:db8:96::1]:443",
    "FWM 9134",
  ]);
  assert.deepEqual(s.get(statsKey("udp", "10.96.0.10", 53)), {
    conns: 820,
    inPkts: 820,
    outPkts: 820,
    inBytes: 52480,
    outBytes: 98400,
    cps: 14,
    inPps: 14,
    outPps: 14,
    inBps: 896,
    outBps: 1680,
  });
  assert.equal(s.get(statsKey("TCP", "2001:db8:96::1", 443))!.conns, 3);
  assert.equal(s.get(statsKey("FWM", "9134"))!.outBps, 700);
});

Deno.test("ipvs stats: without --exact, K/M/G suffixes scale", () => {
  const t = parseStatsTable("TCP  10.96.0.1:443                      12K      3M      298    45G   190332\n");
  assert.deepEqual(t.get("TCP 10.96.0.1:443"), [12_000, 3_000_000, 298, 45_000_000_000, 190332]);
});

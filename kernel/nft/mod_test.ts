import assert from "node:assert/strict";
import { nftQuote, parseJson } from "./mod.ts";

Deno.test("parseJson reads tables, chains, sets and counts rules per chain", () => {
  const r = parseJson(JSON.stringify({
    nftables: [
      { metainfo: { version: "1.0.6" } },
      { table: { family: "ip", name: "t", handle: 1 } },
      { chain: { family: "ip", table: "t", name: "in", handle: 1, type: "filter", hook: "input", prio: 0 } },
      { chain: { family: "ip", table: "t", name: "c", handle: 2 } },
      { set: { family: "ip", table: "t", name: "s", type: "ipv4_addr", elem: ["10.0.0.1"] } },
      { rule: { family: "ip", table: "t", chain: "c", handle: 3, expr: [] } },
      { rule: { family: "ip", table: "t", chain: "c", handle: 4, expr: [] } },
    ],
  }));
  assert.deepEqual(r.tables, [{ family: "ip", name: "t" }]);
  assert.equal(r.chains[0].hook, "input");
  assert.deepEqual(r.sets[0].elem, ["10.0.0.1"]);
  assert.equal(r.ruleCounts.get("ip t c"), 2);
  assert.equal(parseJson("").tables.length, 0);
});

Deno.test("nftQuote quotes only what needs it", () => {
  assert.equal(nftQuote("KUBE-ROUTER-INPUT"), "KUBE-ROUTER-INPUT");
  assert.equal(nftQuote("a b"), '"a b"');
});

import assert from "node:assert/strict";
import { nftQuote, parseJson, readSetCounters } from "./mod.ts";

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

Deno.test("readSetCounters reads element counters of the sets asked for in one call", async () => {
  const doc = (name: string, elem: unknown[]) =>
    JSON.stringify({ nftables: [{ metainfo: {} }, { set: { family: "ip", table: "t", name, elem } }] });
  const calls: string[][] = [];
  const runner = {
    run(argv: readonly string[]) {
      calls.push([...argv]);
      return Promise.resolve({
        code: 0,
        stderr: "",
        stdout: doc("a", [{
          elem: { val: { concat: ["10.96.0.10", "tcp", 80] }, counter: { packets: 3, bytes: 180 } },
        }]) +
          "\n" + doc("b", [{ elem: { val: "2001:db8::1", counter: { packets: 1, bytes: 80 } } }]) + "\n",
      });
    },
  };
  const r = await readSetCounters(runner, { family: "ip", name: "t" }, ["a", "b"]);
  assert.deepEqual(calls, [["nft", "-j", "list", "sets", "table", "ip", "t"]]);
  assert.deepEqual(r.get("a")?.get("10.96.0.10 . tcp . 80"), { packets: 3, bytes: 180 });
  assert.deepEqual(r.get("b")?.get("2001:db8::1"), { packets: 1, bytes: 80 });
});

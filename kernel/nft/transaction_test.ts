import assert from "node:assert/strict";
import { ExecError } from "../exec.ts";
import { FakeNft } from "./fake.ts";
import { apply, listTable, refusedAt } from "./mod.ts";
import type { NftTableSpec } from "./table.ts";
import { deltaTransaction, fullTransaction, NftTableSync } from "./transaction.ts";

/** A table whose map `svc` sends each key to a chain `to-<key>` (a verdict map, like the proxy's). */
function table(keys: string[], extra: Record<string, string[]> = {}): NftTableSpec {
  const t: NftTableSpec = {
    family: "ip",
    name: "t",
    sets: new Map([
      ["svc", {
        kind: "map",
        decl: "type inet_service : verdict ;",
        elements: new Map(keys.map((k) => [k, `goto to-${k}`])),
      }],
      ["addrs", {
        kind: "set",
        decl: "type ipv4_addr; flags interval;",
        elements: new Map(),
        replaceOnChange: true,
      }],
    ]),
    chains: new Map([
      ["pre", {
        decl: "type nat hook prerouting priority dstnat ; policy accept ;",
        rules: ["tcp dport vmap @svc"],
      }],
    ]),
  };
  for (const k of keys) t.chains.set(`to-${k}`, { decl: "", rules: [`dnat to 10.0.0.${k}`] });
  for (const [c, rules] of Object.entries(extra)) t.chains.set(c, { decl: "", rules });
  return t;
}

Deno.test("nft layer: full transaction replaces the table; the fake parses and holds it", async () => {
  const fake = new FakeNft();
  const script = fullTransaction(table(["1", "2"]));
  assert.deepEqual(script.split("\n").slice(0, 3), ["add table ip t", "delete table ip t", "add table ip t"]);
  await apply(fake, script);
  await apply(fake, script); // idempotent: replaces the table
  const got = await listTable(fake, "ip", "t");
  assert.deepEqual(got?.chains.map((c) => c.name).sort(), ["pre", "to-1", "to-2"]);
  assert.equal(got?.ruleCounts.get("ip t to-2"), 1);
  assert.match(fake.dump(), /map svc \{ .* \} = 1 : goto to-1, 2 : goto to-2/);
});

Deno.test("nft layer: delta touches only what changed; equal → empty; type change → undefined", () => {
  const a = table(["1", "2"]);
  const b = table(["1", "3"]);
  const d = deltaTransaction(a, b)!;
  assert.deepEqual(d.trim().split("\n"), [
    "delete element ip t svc { 2 }",
    "add chain ip t to-3",
    "add rule ip t to-3 dnat to 10.0.0.3",
    "add element ip t svc { 3 : goto to-3 }",
    "flush chain ip t to-2",
    "delete chain ip t to-2",
  ]);
  assert.equal(deltaTransaction(b, b), "");
  const c = table(["1"]);
  c.sets.get("addrs")!.decl = "type ipv4_addr;";
  assert.equal(deltaTransaction(a, c), undefined);
  // A replace-on-change set is flushed and refilled.
  const e = table(["1", "2"]);
  e.sets.get("addrs")!.elements.set("10.1.0.0/16", "");
  assert.deepEqual(deltaTransaction(a, e)!.trim().split("\n"), [
    "flush set ip t addrs",
    "add element ip t addrs { 10.1.0.0/16 }",
  ]);
});

Deno.test("nft layer: a chain a map element pointed at is deleted one transaction later (kernels < 6.2)", async () => {
  // The fake as a pre-6.2 kernel: the reference a deleted map element held is freed only after
  // the transaction, so deleting its chain in the same transaction is refused (EBUSY).
  const fake = new FakeNft();
  fake.lateChainRelease = true;
  await apply(fake, fullTransaction(table(["1", "2"])));
  // What a naive delta does fails on such a kernel.
  await assert.rejects(
    () => apply(fake, deltaTransaction(table(["1", "2"]), table(["1"]))!),
    (e: ExecError) => /delete chain ip t to-2/.test(e.offendingLine?.text ?? "") && /busy/.test(e.stderr),
  );
  let clock = 0;
  const sync = new NftTableSync({ now: () => clock, staleChainDelayMs: 1000 });
  const first = sync.transaction(table(["1", "2"]));
  assert.equal(first.full, true);
  await apply(fake, first.script);
  first.commit();
  // Service 2 goes: its element goes, its chain is flushed but stays.
  const tx = sync.transaction(table(["1"]));
  assert.match(tx.script, /flush chain ip t to-2/);
  assert.doesNotMatch(tx.script, /delete chain/);
  await apply(fake, tx.script);
  tx.commit();
  assert.deepEqual([...sync.staleChains], ["to-2"]);
  const held = await listTable(fake, "ip", "t");
  assert.ok(held?.chains.some((c) => c.name === "to-2"), "still there");
  assert.equal(held?.ruleCounts.get("ip t to-2"), undefined, "flushed");
  // Too soon: nothing to do yet.
  clock = 500;
  assert.equal(sync.transaction(table(["1"])).script, "");
  // A later transaction deletes it, whatever else it carries.
  clock = 1500;
  const later = sync.transaction(table(["1"], { other: ["accept"] }));
  assert.match(later.script, /delete chain ip t to-2/);
  await apply(fake, later.script);
  later.commit();
  assert.equal(sync.staleChains.size, 0);
  assert.doesNotMatch(fake.dump(), /to-2/);
  // A chain that comes back before its deletion is refilled, not deleted.
  const t3 = sync.transaction(table(["1", "3"], { other: ["accept"] }));
  await apply(fake, t3.script);
  t3.commit();
  const t4 = sync.transaction(table(["1"], { other: ["accept"] }));
  await apply(fake, t4.script);
  t4.commit();
  clock = 3000;
  const t5 = sync.transaction(table(["1", "3"], { other: ["accept"] }));
  assert.doesNotMatch(t5.script, /delete chain/);
  await apply(fake, t5.script);
  t5.commit();
  assert.equal(sync.staleChains.size, 0);
  assert.equal((await listTable(fake, "ip", "t"))?.ruleCounts.get("ip t to-3"), 1);
  // Chains only rules jumped to go in the same transaction (rule references are freed at once).
  const t6 = sync.transaction(table(["1", "3"]));
  assert.match(t6.script, /flush chain ip t other\n.*delete chain ip t other/s);
});

Deno.test("nft fake: a refused script changes nothing and names the line and element as nft does", async () => {
  const fake = new FakeNft();
  await apply(fake, fullTransaction(table(["1", "2"])));
  const before = fake.dump();
  const script =
    "add element ip t addrs { 10.9.0.0/16 }\nadd element ip t svc { 3 : accept, 1 : drop, 4 : accept }\n";
  const err = await apply(fake, script).catch((e) => e);
  assert.ok(err instanceof ExecError);
  assert.equal(err.offendingLine?.number, 2);
  assert.equal(refusedAt(err)?.span, "1", "the element's key");
  assert.match(err.stderr, /File exists/);
  assert.equal(fake.dump(), before, "atomic");
  // Deleting what is not there, a rule into a missing chain, a set in use: refused like nft.
  await assert.rejects(() => apply(fake, "delete element ip t svc { 9 }\n"), /No such file/);
  await assert.rejects(() => apply(fake, "add rule ip t pre goto nowhere\n"), /No such file/);
  await assert.rejects(() => apply(fake, "delete set ip t svc\n"), /busy/);
  // Injected refusal.
  fake.refuse = (l) => l.includes("addrs") ? "Could not process rule: No space left on device" : undefined;
  await assert.rejects(() => apply(fake, script), /No space left/);
});

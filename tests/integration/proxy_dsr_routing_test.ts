// Integration: the DSR director's policy routing in a scratch namespace, both families, for real:
// one `ip -4 -batch` and one `ip -6 -batch` add the fwmark rules and table 78's local default
// route, reading back gives the same state, a second diff is empty, removal leaves foreign rules.
// Marks are arbitrary; foreign rules: fwmark 0x99 → table 100, fwmark 0x55 → 78 at priority 200.
import assert from "node:assert/strict";
import { CommandRunner } from "../../kernel/exec.ts";
import { applyDsrRouting, readDsrRouting, renderDsrRouting } from "../../kernel/ip/fwmark_rule.ts";

Deno.test("DSR policy routing: IPv4 and IPv6 batches, read back, idempotent, foreign rules kept", async () => {
  const ns = `pxf-rt-${crypto.randomUUID().slice(0, 8)}`;
  const root = new CommandRunner();
  await root.run(["ip", "netns", "add", ns]);
  try {
    const r = new CommandRunner(ns);
    for (const f of [4, 6] as const) {
      await r.run(["ip", `-${f}`, "rule", "add", "fwmark", "0x99", "lookup", "100", "priority", "32764"]);
      await r.run(["ip", `-${f}`, "rule", "add", "fwmark", "0x55", "lookup", "78", "priority", "200"]);
    }
    for (const f of [4, 6] as const) {
      const want = { marks: [0x1a2b, 0x3c], localRoute: true };
      const before = await readDsrRouting(r, f);
      assert.deepEqual(before, { marks: [], localRoute: false }, `IPv${f}: foreign rules are not ours`);
      assert.equal(await applyDsrRouting(r, f, renderDsrRouting(before, want)), true);
      assert.deepEqual(await readDsrRouting(r, f), { marks: [0x3c, 0x1a2b], localRoute: true });
      assert.deepEqual(
        renderDsrRouting(await readDsrRouting(r, f), { marks: [0x3c, 0x1a2b], localRoute: true }),
        [],
      );
      await applyDsrRouting(
        r,
        f,
        renderDsrRouting(await readDsrRouting(r, f), { marks: [], localRoute: false }),
      );
      assert.deepEqual(await readDsrRouting(r, f), { marks: [], localRoute: false });
      const rules = (await r.run(["ip", `-${f}`, "rule", "show"])).stdout;
      assert.match(rules, /32764:\s+from all fwmark 0x99 lookup 100/);
      assert.match(rules, /200:\s+from all fwmark 0x55 lookup 78/);
    }
  } finally {
    await root.run(["ip", "netns", "del", ns]);
  }
});

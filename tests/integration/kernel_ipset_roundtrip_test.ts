/**
 * kernel/ipset against the real tool, inside a namespace `fw…` this test creates.
 * Addresses: 10.202.0.0/16, 2001:db8::/32 as set entries only; no traffic.
 */
import assert from "node:assert/strict";
import { ExecError } from "../../kernel/exec.ts";
import {
  defaultTempName,
  destroySets,
  listHeaders,
  parseSave,
  renderSave,
  renderSwapScript,
  restore,
  save,
} from "../../kernel/ipset/mod.ts";
import { createNetns } from "./firewall_netns_helper.ts";

const FIXTURE = `create A hash:ip family inet hashsize 1024 maxelem 65536
add A 10.202.0.1
add A 10.202.0.2
create B hash:net family inet6 hashsize 1024 maxelem 65536
add B 2001:db8::/32
add B 2001:db8:1::/48 nomatch
create C hash:ip,port family inet hashsize 1024 maxelem 65536
add C 10.202.0.3,tcp:80
add C 10.202.0.3,udp:53
`;

Deno.test("ipset save of a real namespace round-trips through parse/render", async () => {
  const ns = await createNetns("ips");
  try {
    await restore(ns.runner, FIXTURE, { netns: undefined });
    const saved = await save(ns.runner);
    assert.deepEqual(saved.map((s) => s.name), ["A", "B", "C"]);
    assert.deepEqual(saved[1].entries.sort(), ["2001:db8:1::/48 nomatch", "2001:db8::/32"]);
    // Render, destroy everything, restore the rendering: the kernel holds the same sets.
    const text = renderSave(saved);
    await destroySets(ns.runner, ["A", "B", "C"]);
    assert.deepEqual(await save(ns.runner), []);
    await restore(ns.runner, text);
    const again = await save(ns.runner);
    const norm = (ss: typeof saved) => ss.map((s) => ({ ...s, entries: [...s.entries].sort() }));
    assert.deepEqual(norm(again), norm(saved));
    assert.deepEqual(norm(parseSave(text)), norm(saved));
  } finally {
    await ns.dispose();
  }
});

Deno.test("swap script replaces a referenced live set without emptying it; a failing script leaves it intact", async () => {
  const ns = await createNetns("ips");
  try {
    await restore(ns.runner, FIXTURE);
    // Reference A from iptables so it cannot be destroyed.
    await ns.sh("iptables-nft -A INPUT -m set --match-set A src -j ACCEPT");
    const existing = new Map((await listHeaders(ns.runner)).map((h) => [h.name, { type: h.type }]));
    await restore(
      ns.runner,
      renderSwapScript({
        sets: [{ name: "A", type: "hash:ip", options: ["family", "inet"], entries: ["10.202.0.9"] }],
        existing,
        destroy: ["C"],
      }),
    );
    const after = await save(ns.runner);
    assert.deepEqual(after.find((s) => s.name === "A")!.entries, ["10.202.0.9"]);
    assert.ok(!after.some((s) => s.name === "C" || s.name === defaultTempName("A")));
    // A bad entry: the script fails while filling the temp set; A keeps its contents.
    const bad = renderSwapScript({
      sets: [{
        name: "A",
        type: "hash:ip",
        options: ["family", "inet"],
        entries: ["10.202.0.10", "not-an-ip"],
      }],
      existing: new Map((await listHeaders(ns.runner)).map((h) => [h.name, { type: h.type }])),
    });
    await assert.rejects(restore(ns.runner, bad), (e: unknown) => {
      assert.ok(e instanceof ExecError);
      assert.match(e.offendingLine?.text ?? "", /not-an-ip/);
      return true;
    });
    assert.deepEqual((await save(ns.runner, {}, "A"))[0].entries, ["10.202.0.9"]);
    // The next script cleans the leftover temp set first.
    await restore(
      ns.runner,
      renderSwapScript({
        sets: [{ name: "A", type: "hash:ip", options: ["family", "inet"], entries: ["10.202.0.11"] }],
        existing: new Map((await listHeaders(ns.runner)).map((h) => [h.name, { type: h.type }])),
      }),
    );
    const final = await save(ns.runner);
    assert.deepEqual(final.find((s) => s.name === "A")!.entries, ["10.202.0.11"]);
    assert.ok(!final.some((s) => s.name === defaultTempName("A")));
  } finally {
    await ns.dispose();
  }
});

/**
 * kernel/ip against the real kernel, inside a throwaway namespace `rt-ip-<random>`.
 *
 * Addresses: 10.201.0.0/24 on the namespace's bridge `rtbr0` (gateways 10.201.0.2-.9),
 * pod-like destinations 10.201.1.0/24…, 2001:db8:201::/64 for IPv6.
 */
import assert from "node:assert/strict";
import { CommandRunner } from "../../kernel/exec.ts";
import { ipBatch, readOurRoutes, type Route, syncRoutes } from "../../kernel/ip/mod.ts";
import { ensureSysctls, readSysctls } from "../../kernel/sysctl.ts";

async function withNetns(fn: (ns: string, run: CommandRunner) => Promise<void>) {
  const ns = `rt-ip-${crypto.randomUUID().slice(0, 8)}`;
  const root = new CommandRunner();
  await root.run(["ip", "netns", "add", ns]);
  try {
    const run = new CommandRunner(ns);
    await ipBatch(run, [
      "link set lo up",
      "link add name rtbr0 type bridge",
      "link set rtbr0 up",
      "addr add 10.201.0.1/24 dev rtbr0",
      "addr add 2001:db8:201::1/64 dev rtbr0 nodad",
    ]);
    await fn(ns, run);
  } finally {
    await root.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
  }
}

Deno.test("routes: sync installs proto 17, repairs drift, removes stale, leaves foreign routes alone", async () => {
  await withNetns(async (_ns, run) => {
    // A foreign route (static, proto 4) on a destination we will also manage in table 77.
    await run.run(["ip", "route", "add", "10.201.9.0/24", "via", "10.201.0.9", "proto", "static"]);
    await run.run([
      "ip",
      "route",
      "add",
      "10.201.1.0/24",
      "via",
      "10.201.0.9",
      "proto",
      "static",
      "table",
      "77",
    ]);
    const want: Route[] = [
      { dst: "10.201.1.0/24", via: "10.201.0.2", dev: "rtbr0" },
      { dst: "10.201.2.0/24", via: "10.201.0.3", dev: "rtbr0" },
      { dst: "10.201.0.5/32", dev: "rtbr0", table: 77 },
      { dst: "2001:db8:202::/64", via: "2001:db8:201::2", dev: "rtbr0" },
    ];
    const first = await syncRoutes(run, want);
    assert.equal(first.length, 4);
    const shown = (await run.run(["ip", "-j", "route", "show", "10.201.1.0/24"])).stdout;
    assert.equal(JSON.parse(shown)[0].protocol, "17");
    assert.deepEqual(
      (await readOurRoutes(run)).map((r) => r.dst).sort(),
      ["10.201.0.5/32", "10.201.1.0/24", "10.201.2.0/24", "2001:db8:202::/64"],
    );
    // Idempotent: a second sync runs no batch.
    const before = run.launched;
    assert.deepEqual(await syncRoutes(run, want), []);
    assert.equal(run.launched - before, 2, "only the two read-only listings ran");
    // Drift: someone deletes one of ours and changes another; sync repairs both.
    await run.run(["ip", "route", "del", "10.201.1.0/24", "proto", "17"]);
    await run.run(["ip", "route", "replace", "10.201.2.0/24", "via", "10.201.0.7", "proto", "17"]);
    assert.equal((await syncRoutes(run, want)).length, 2);
    // Withdraw: everything of ours goes, foreign routes stay.
    await syncRoutes(run, []);
    assert.deepEqual(await readOurRoutes(run), []);
    const main = JSON.parse((await run.run(["ip", "-j", "route", "show", "10.201.9.0/24"])).stdout);
    assert.equal(main.length, 1);
    const t77 = JSON.parse((await run.run(["ip", "-j", "route", "show", "table", "77"])).stdout);
    assert.deepEqual(t77.map((r: { dst: string }) => r.dst), ["10.201.1.0/24"]);
  });
});

Deno.test("routes: a failing batch names the offending line", async () => {
  await withNetns(async (_ns, run) => {
    await assert.rejects(
      syncRoutes(run, [
        { dst: "10.201.1.0/24", via: "10.201.0.2" },
        { dst: "10.201.2.0/24", via: "10.201.0.3", dev: "nosuchdev" },
      ]),
      (e: Error) => /input line 2/.test(e.message) && /nosuchdev/.test(e.message),
    );
  });
});

Deno.test("sysctl: batched read and write inside the namespace", async () => {
  await withNetns(async (_ns, run) => {
    const key = "net.ipv4.conf.all.forwarding";
    const w = new Map([[key, "1"]]);
    await ensureSysctls(run, w);
    assert.equal((await readSysctls(run, [key])).get(key), "1");
    assert.deepEqual(await ensureSysctls(run, w), []);
  });
});

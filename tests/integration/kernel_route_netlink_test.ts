/**
 * Routes written over rtnetlink (kernel/ip/route_write.ts through `CommandRunner.netlink`) read
 * back with iproute2 exactly as the `ip -batch` path would have written them, inside a throwaway
 * namespace `nl-rt-<random>`. Addresses: 10.216.0.0/24 and 2001:db8:216::/64 on veth `nlv0`,
 * routes 10.217.x.0/24 and 2001:db8:217::/64; a foreign route 10.218.0.0/24 proto static.
 */
import assert from "node:assert/strict";
import { CommandRunner } from "../../kernel/exec.ts";
import { readOurRoutes, type Route, writeRoutes } from "../../kernel/ip/mod.ts";

/** Runs `fn` with a runner inside a throwaway namespace `nl-rt-<random>`, always removed. */
async function inNamespace(fn: (run: CommandRunner) => Promise<void>): Promise<void> {
  const ns = `nl-rt-${crypto.randomUUID().slice(0, 8)}`;
  const root = new CommandRunner();
  await root.run(["ip", "netns", "add", ns]);
  try {
    await fn(new CommandRunner(ns));
  } finally {
    await root.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
  }
}

Deno.test({
  name:
    "rtnetlink routes: replace/delete of proto 17 only, onlink, table 77, src, IPv6, IPv4 via IPv6; per-route failures",
  sanitizeResources: false,
  async fn() {
    await inNamespace(async (run) => {
      assert.ok(run.netlink, "FFI is allowed under -A, so the runner has a netlink channel");
      await run.run(["ip", "-batch", "-"], {
        stdin: [
          "link set lo up",
          "link add nlv0 type veth peer name nlv1",
          "link set nlv0 up",
          "link set nlv1 up",
          "addr add 10.216.0.1/24 dev nlv0",
          "addr add 2001:db8:216::1/64 dev nlv0 nodad",
          "route add 10.218.0.0/24 via 10.216.0.9 proto static",
        ].join("\n") + "\n",
      });
      const want: Route[] = [
        { dst: "10.217.1.0/24", via: "10.216.0.2" },
        { dst: "10.217.2.0/24", via: "10.216.0.3", dev: "nlv0", onlink: true, src: "10.216.0.1" },
        { dst: "10.216.0.7/32", via: "10.216.0.7", dev: "nlv0", onlink: true, table: 77 },
        { dst: "2001:db8:217::/64", via: "2001:db8:216::2" },
      ];
      const r = await writeRoutes(run, [
        ...want.map((route) => ({ del: false, route })),
        { del: false, route: { dst: "10.217.9.0/24", via: "10.99.0.1" } }, // unreachable gateway
        { del: false, route: { dst: "10.217.8.0/24", dev: "no-such-dev" } },
        { del: true, route: { dst: "10.218.0.0/24" } }, // foreign (proto static): must survive
        { del: true, route: { dst: "10.217.7.0/24" } }, // absent: done
      ]);
      assert.equal(r.via, "netlink");
      assert.deepEqual(r.failed.map((f) => f.op.route.dst).sort(), ["10.217.8.0/24", "10.217.9.0/24"]);
      assert.equal(r.done, want.length + 2);
      const have = await readOurRoutes(run, [4, 6]);
      const key = (x: Route) => `${x.table ?? 254} ${x.dst}`;
      assert.deepEqual(
        have.map((x) => ({ ...x, dev: x.onlink ? x.dev : undefined })).sort((a, b) =>
          key(a) < key(b) ? -1 : 1
        ),
        want.map((x) => ({ ...x, dev: x.onlink ? x.dev : undefined })).sort((a, b) =>
          key(a) < key(b) ? -1 : 1
        ),
      );
      assert.match((await run.run(["ip", "route", "show", "10.218.0.0/24"])).stdout, /proto static/);

      // IPv4 prefix via an IPv6 next hop (RFC 5549: RTA_VIA), as the kernel spells it back.
      const v = await writeRoutes(run, [{
        del: false,
        route: { dst: "10.217.5.0/24", via: "2001:db8:216::2" },
      }]);
      assert.deepEqual(v.failed, []);
      assert.match(
        (await run.run(["ip", "-4", "route", "show", "10.217.5.0/24"])).stdout,
        /via inet6 2001:db8:216::2 dev nlv0 proto 17/,
      );

      const d = await writeRoutes(run, have.map((route) => ({ del: true, route })));
      assert.deepEqual(d.failed, []);
      await writeRoutes(run, [{ del: true, route: { dst: "10.217.5.0/24" } }]);
      assert.deepEqual(await readOurRoutes(run, [4, 6]), []);
      assert.match((await run.run(["ip", "route", "show", "10.218.0.0/24"])).stdout, /proto static/);
    });
  },
});

Deno.test({
  name:
    "rtnetlink routes: many chunks (sends off the JS thread), refusals inside chunks, concurrent writes queued in order",
  sanitizeResources: false,
  async fn() {
    await inNamespace(async (run) => {
      await run.run(["ip", "-batch", "-"], {
        stdin: "link set lo up\nlink add nlv0 type veth peer name nlv1\nlink set nlv0 up\n" +
          "link set nlv1 up\naddr add 10.216.0.1/24 dev nlv0\n",
      });
      // 5,000 routes (10 chunks); every 700th has an unreachable gateway, every 1,100th a bad prefix.
      const dst = (i: number) => `10.220.${i >> 8}.${i & 255}/32`;
      const ops = Array.from({ length: 5000 }, (_, i) => ({
        del: false,
        route: i % 1100 === 13
          ? { dst: `10.220.${i >> 8}.300/32`, via: "10.216.0.2" }
          : { dst: dst(i), via: i % 700 === 5 ? "10.99.0.1" : "10.216.0.2" },
      }));
      const bad = ops.filter((o) => o.route.via === "10.99.0.1" || o.route.dst.endsWith(".300/32"));
      // Three writes started together: adds, then deletes of the first 1,000, then their re-adds
      // via another hop. Run out of order (or two sends at once) they would leave other routes.
      const again = ops.slice(0, 1000).filter((o) => !bad.includes(o));
      const [a, d, r] = await Promise.all([
        writeRoutes(run, ops),
        writeRoutes(run, again.map((o) => ({ del: true, route: o.route }))),
        writeRoutes(run, again.map((o) => ({ del: false, route: { ...o.route, via: "10.216.0.3" } }))),
      ]);
      assert.deepEqual(a.failed.map((f) => f.op.route.dst).sort(), bad.map((o) => o.route.dst).sort());
      assert.match(a.failed.find((f) => f.op.route.via === "10.99.0.1")!.error, /errno/);
      assert.match(a.failed.find((f) => f.op.route.dst.endsWith(".300/32"))!.error, /bad prefix/);
      assert.equal(a.done, 5000 - bad.length);
      assert.deepEqual([d.failed, r.failed], [[], []]);
      const have = await readOurRoutes(run, [4]);
      assert.equal(have.length, 5000 - bad.length);
      const viaOf = new Map(have.map((x) => [x.dst, x.via]));
      for (const o of again) assert.equal(viaOf.get(o.route.dst), "10.216.0.3", o.route.dst);
      assert.equal(viaOf.get(dst(4999)), "10.216.0.2");
      const gone = await writeRoutes(run, have.map((route) => ({ del: true, route })));
      assert.deepEqual([gone.failed, gone.done], [[], have.length]);
      assert.deepEqual(await readOurRoutes(run, [4]), []);
    });
  },
});

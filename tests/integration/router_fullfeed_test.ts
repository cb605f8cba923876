/**
 * Regression (not timed): a large table from BIRD through the real routing-controller path
 * (speaker → best-path events → per-prefix delta → rtnetlink) into the kernel, and out again.
 * Above ~120k learned routes the old path (a full rebuild and diff per batch, spread into
 * `push(...)`) died with "Maximum call stack size exceeded" and never converged.
 *
 * Lab (tests/fixtures/bgp_peers.ts): BIRD 10.240.0.1 (AS 65000) and our router 10.240.0.2
 * (AS 64512, tests/fixtures/router_child.ts in its namespace); the table is 10.200.0.0/32
 * upwards; IPv6 2001:db8:f000::/128 upwards over a second session.
 */
import assert from "node:assert/strict";
import { type BgpLab, waitFor } from "../fixtures/bgp_peers.ts";
import type { RouterChildConfig } from "../fixtures/router_child.ts";
import { routerLabTest } from "../fixtures/router_lab.ts";

const N = 300_000;
const N6 = 50_000;
const K = 60;

function v4(i: number): string {
  return `10.${200 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
}
function v6(i: number): string {
  return `2001:db8:f000::${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}`;
}

async function kernelRoutes(lab: BgpLab, family: 4 | 6): Promise<string[]> {
  const out = await lab.exec("us", [
    "ip",
    `-${family}`,
    "-o",
    "route",
    "show",
    "table",
    "main",
    "proto",
    "17",
  ]);
  return out === "" ? [] : out.trimEnd().split("\n");
}

routerLabTest(
  "router: 300k IPv4 + 50k IPv6 prefixes from BIRD all reach the kernel (proto 17) and all leave on withdrawal",
  async (lab, spawn) => {
    const b = lab.node("bird"), us = lab.node("us");
    const parts = [`router id ${b.v4};\nprotocol device {}\n`];
    for (let k = 0; k < K; k++) {
      const r4: string[] = [], r6: string[] = [];
      for (let i = k; i < N; i += K) r4.push(`route ${v4(i)}/32 blackhole;`);
      for (let i = k; i < N6; i += K) r6.push(`route ${v6(i)}/128 blackhole;`);
      Deno.writeTextFileSync(`${lab.dir}/r4-${k}.conf`, r4.join("\n") + "\n");
      Deno.writeTextFileSync(`${lab.dir}/r6-${k}.conf`, r6.join("\n") + "\n");
      parts.push(`protocol static s${k} { ipv4;\n  include "${lab.dir}/r4-${k}.conf";\n}\n`);
      parts.push(`protocol static x${k} { ipv6;\n  include "${lab.dir}/r6-${k}.conf";\n}\n`);
    }
    parts.push(
      `protocol bgp to_us { local ${b.v4} as 65000; neighbor ${us.v4} as 64512; keepalive time 1;
  ipv4 { import none; export all; }; }
protocol bgp to_us6 { local ${b.v6} as 65000; neighbor ${us.v6} as 64512; keepalive time 1;
  ipv6 { import none; export all; }; }\n`,
    );
    const bird = await lab.bird("bird", parts.join(""));
    const cfg: RouterChildConfig = {
      nodeIp4: us.v4,
      nodeIp6: us.v6,
      peers: [{ address: b.v4, asn: 65000 }, { address: b.v6, asn: 65000 }],
      asn: 64512,
      dir: lab.dir,
    };
    const spawned = spawn(cfg);
    const last = spawned.last;
    const state = () => JSON.stringify(last());

    await waitFor(
      `all ${N} + ${N6} routes acknowledged (last: ${state()})`,
      () => last().v4 === N && last().v6 === N6,
      10 * 60_000,
      500,
    );
    const r4 = await kernelRoutes(lab, 4), r6 = await kernelRoutes(lab, 6);
    assert.equal(r4.length, N, "every IPv4 prefix is a proto 17 route in the main table");
    assert.equal(r6.length, N6, "every IPv6 prefix is a proto 17 route in the main table");
    // Spot checks: next hop is BIRD on the shared subnet, nothing else in the table.
    for (const i of [0, 1, 65_537, N - 1]) {
      const out = await lab.exec("us", ["ip", "-4", "route", "show", `${v4(i)}/32`]);
      assert.match(out, new RegExp(`^${v4(i)} via ${b.v4} dev eth0 proto 17`), `${v4(i)} via BIRD: ${out}`);
    }
    const out6 = await lab.exec("us", ["ip", "-6", "route", "show", `${v6(N6 - 1)}/128`]);
    assert.match(out6, new RegExp(`^\\S+ via ${b.v6} dev eth0 proto 17`), out6);
    assert.equal(last().error, "");

    // Withdraw everything (UPDATEs with withdrawals, sessions stay up).
    await bird.birdc("disable", `"s*"`);
    await bird.birdc("disable", `"x*"`);
    await waitFor(
      `every route withdrawn (last: ${state()})`,
      () => last().v4 === 0 && last().v6 === 0,
      10 * 60_000,
      500,
    );
    assert.deepEqual(await kernelRoutes(lab, 4), []);
    assert.deepEqual(await kernelRoutes(lab, 6), []);
    assert.equal(await bird.protoState("to_us"), "Established");

    // And back: the delta path re-installs a withdrawn table.
    await bird.birdc("enable", `"s*"`);
    await waitFor(`the IPv4 table back (last: ${state()})`, () => last().v4 === N, 10 * 60_000, 500);
    assert.equal((await kernelRoutes(lab, 4)).length, N);
  },
);

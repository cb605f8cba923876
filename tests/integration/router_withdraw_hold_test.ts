/**
 * Regression: while the start-up hold keeps stale kernel routes (a peer not yet Established,
 * within the graceful-restart time), a route this run learned and its peer then withdrew must
 * leave the kernel at once. The old delta deferred every withdrawal until the hold ended, so a
 * node that left kept its pod CIDR routed for up to the restart time after our agent started
 * (seen by `bench/upstream.ts`'s router half: 5.5 s, against upstream's 0.02 s).
 *
 * Lab (tests/fixtures/bgp_peers.ts): BIRD 10.240.0.1 (AS 65000, no graceful restart) and our
 * router 10.240.0.2 (tests/fixtures/router_child.ts, `--bgp-graceful-restart` with 60 s); a
 * second configured peer, 10.240.0.99, never answers, so the hold lasts the whole 60 s.
 */
import assert from "node:assert/strict";
import { waitFor } from "../fixtures/bgp_peers.ts";
import { routerLabTest } from "../fixtures/router_lab.ts";

const N = 50;
/** Far below the hold (60 s): a withdrawal is seen in the kernel within this. */
const PROMPT_MS = 5_000;

routerLabTest(
  "router: during the start-up hold, withdrawn routes and a departed peer's routes leave the kernel at once",
  async (lab, spawn) => {
    const b = lab.node("bird"), us = lab.node("us");
    const routes = Array.from({ length: N }, (_, i) => `route 10.201.${i}.0/24 blackhole;`).join("\n");
    const bird = await lab.bird(
      "bird",
      `router id ${b.v4};
protocol device {}
protocol static s1 { ipv4; ${routes} }
protocol bgp to_us { local ${b.v4} as 65000; neighbor ${us.v4} as 64512; keepalive time 1;
  graceful restart off; ipv4 { import none; export all; }; }
`,
    );
    const started = Date.now();
    const spawned = spawn({
      nodeIp4: us.v4,
      peers: [{ address: b.v4, asn: 65000 }, { address: "10.240.0.99", asn: 65001 }],
      asn: 64512,
      dir: lab.dir,
      gracefulRestartTime: 60,
    });
    const last = spawned.last;
    const routed = async () =>
      (await lab.exec("us", ["ip", "-4", "-o", "route", "show", "proto", "17"])).split("\n").filter(Boolean)
        .length;

    await waitFor(`all ${N} routes (last: ${JSON.stringify(last())})`, () => last().v4 === N, 30_000, 50);
    assert.equal(await routed(), N);

    // 1. Withdrawn by UPDATE, the session staying up.
    let t = Date.now();
    await bird.birdc("disable", "s1");
    await waitFor(
      "withdrawn routes gone from the kernel",
      async () => (await routed()) === 0,
      PROMPT_MS,
      50,
    );
    const withdrawMs = Date.now() - t;
    // The child's own count follows within its 5 ms report interval.
    await waitFor("the router's count at 0", () => last().v4 === 0, 2_000, 5);
    assert.equal(await bird.protoState("to_us"), "Established");

    await bird.birdc("enable", "s1");
    await waitFor("routes back", async () => (await routed()) === N, 10_000, 50);

    // 2. The peer leaves (BIRD sends Cease and closes).
    t = Date.now();
    await bird.birdc("disable", "to_us");
    await waitFor("the departed peer's routes gone", async () => (await routed()) === 0, PROMPT_MS, 50);
    const leaveMs = Date.now() - t;
    // Both happened inside the hold, or the test proved nothing.
    assert.ok(Date.now() - started < 50_000, `the hold (60 s) had ended: ${Date.now() - started} ms`);
    console.log(`withdrawal ${withdrawMs} ms, peer gone ${leaveMs} ms (hold: 60 s)`);
  },
);

/**
 * IP TTL (eBGP multihop) and minimum TTL (GTSM) on our FFI sockets, against BIRD two hops
 * away through a router namespace. Our side is the agent script in `bgt-a-*`.
 *
 * Addresses: a(eth0 10.233.1.1/24, 2001:db8:233:1::1/64) ⇄ r(eth0 10.233.1.254/24,
 * 2001:db8:233:1::fe/64; eth1 10.233.2.254/24, 2001:db8:233:2::fe/64) ⇄ b(eth0 10.233.2.2/24,
 * 2001:db8:233:2::2/64). a and b route everything through r; r forwards IPv4 and IPv6. Ours AS 64513,
 * BIRD AS 64512 with `multihop 2` (so BIRD's own packets reach us with TTL 1).
 */
import assert from "node:assert/strict";
import { Lab, waitFor } from "./bgp_md5_lab.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };

async function setup(lab: Lab) {
  const a = await lab.ns("a");
  const r = await lab.ns("r");
  const b = await lab.ns("b");
  await lab.link(a, "eth0", ["10.233.1.1/24", "2001:db8:233:1::1/64"], r, "eth0", [
    "10.233.1.254/24",
    "2001:db8:233:1::fe/64",
  ]);
  await lab.link(r, "eth1", ["10.233.2.254/24", "2001:db8:233:2::fe/64"], b, "eth0", [
    "10.233.2.2/24",
    "2001:db8:233:2::2/64",
  ]);
  await lab.exec(r, ["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
  await lab.exec(a, ["ip", "route", "add", "default", "via", "10.233.1.254"]);
  await lab.exec(b, ["ip", "route", "add", "default", "via", "10.233.2.254"]);
  await lab.exec(a, ["ip", "-6", "route", "add", "default", "via", "2001:db8:233:1::fe"]);
  await lab.exec(b, ["ip", "-6", "route", "add", "default", "via", "2001:db8:233:2::fe"]);
  return { a, b };
}

function birdConf(passive: boolean, v6 = false): string {
  return `router id 10.233.2.2;
log stderr all;
protocol device { }
protocol bgp ours {
  local ${v6 ? "2001:db8:233:2::2" : "10.233.2.2"} as 64512;
  neighbor ${v6 ? "2001:db8:233:1::1" : "10.233.1.1"} as 64513;
  multihop 2;
  passive ${passive ? "on" : "off"};
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 3;
  ${v6 ? "ipv6" : "ipv4"} { import all; export none; };
}
`;
}

for (const v6 of [false, true]) {
  const fam = v6 ? "IPv6" : "IPv4";
  Deno.test(
    `ttl/bird ${fam}: a peer two hops away is unreachable with ttl 1 and Established with ttl 2`,
    OPTS,
    async () => {
      const lab = new Lab();
      try {
        const { a, b } = await setup(lab);
        const birdc = await lab.bird(b, "bird", birdConf(true, v6));
        const base = {
          mode: "connect",
          host: v6 ? "2001:db8:233:2::2" : "10.233.2.2",
          asn: 64513,
          routerId: "10.233.1.1",
        };

        const one = lab.agent(a, { ...base, ttl: 1, connectTimeoutMs: 3000 });
        const ev1 = await one.waitEvent(
          (e) => e.event === "error" || e.event === "connected",
          "ttl 1 outcome",
        );
        assert.equal(ev1.event, "error", `ttl 1 must not reach a peer 2 hops away: ${JSON.stringify(ev1)}`);
        // The router answers the TTL-1 SYN with ICMP time exceeded, which Linux reports as EHOSTUNREACH.
        assert.equal(ev1.code, "EHOSTUNREACH", JSON.stringify(ev1));
        await one.stop();

        const two = lab.agent(a, { ...base, ttl: 2 });
        const ev2 = await two.waitEvent(
          (e) => e.event === "established" || e.event === "error",
          "ttl 2 outcome",
        );
        assert.equal(ev2.event, "established", JSON.stringify(ev2));
        assert.equal(ev2.ttl, 2, "the socket reports the TTL we set");
        await waitFor(
          "BIRD reports Established",
          async () => /Established/.test(await birdc("show protocols ours")),
        );
      } finally {
        await lab.close();
      }
    },
  );
}

Deno.test(
  "ttl/bird: our listener with minTtl 2 drops BIRD's TTL-1 SYNs (GTSM); without it BIRD gets in",
  OPTS,
  async () => {
    const lab = new Lab();
    try {
      const { a, b } = await setup(lab);
      const base = { mode: "listen", host: "0.0.0.0", port: 179, asn: 64513, routerId: "10.233.1.1", ttl: 2 };
      const strict = lab.agent(a, { ...base, minTtl: 2 });
      await strict.waitEvent((e) => e.event === "listening", "listening");
      const birdc = await lab.bird(b, "bird", birdConf(false));
      await waitFor(
        "our kernel drops SYNs under the minimum TTL",
        async () => (await lab.counter(a, "TcpExtTCPMinTTLDrop")) >= 1,
      );
      assert.ok(!strict.has("accepted"), "nothing below the minimum TTL was accepted");
      await strict.stop();

      const open = lab.agent(a, base);
      await open.waitEvent((e) => e.event === "established", "established", 25000);
      await waitFor(
        "BIRD reports Established",
        async () => /Established/.test(await birdc("show protocols ours")),
      );
    } finally {
      await lab.close();
    }
  },
);

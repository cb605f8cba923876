/**
 * TCP MD5 (RFC 2385) between our FFI sockets and BIRD 2, both directions, IPv4 and IPv6.
 * Our side is the agent script (bgp_md5_agent.ts) running in namespace `bgt-a-*`; it speaks a
 * hand-encoded OPEN/KEEPALIVE so the transport is proven on its own.
 *
 * Addresses: link a(eth0) ⇄ b(eth0), 10.231.0.1/24 + 2001:db8:231::1/64 (ours, AS 64513) and
 * 10.231.0.2/24 + 2001:db8:231::2/64 (BIRD, AS 64512). Namespaces `bgt-a-<id>`, `bgt-b-<id>`.
 */
import assert from "node:assert/strict";
import { Lab, waitFor } from "./bgp_md5_lab.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };

function birdConf(o: { v6?: boolean; password?: string; passive: boolean }): string {
  const [local, peer, ch] = o.v6
    ? ["2001:db8:231::2", "2001:db8:231::1", "ipv6"]
    : ["10.231.0.2", "10.231.0.1", "ipv4"];
  return `router id 10.231.0.2;
log stderr all;
protocol device { }
protocol bgp ours {
  local ${local} as 64512;
  neighbor ${peer} as 64513;
  ${o.password ? `password "${o.password}";` : ""}
  passive ${o.passive ? "on" : "off"};
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 3;
  hold time 30;
  ${ch} { import all; export none; };
}
`;
}

async function setup(lab: Lab) {
  const a = await lab.ns("a");
  const b = await lab.ns("b");
  await lab.link(a, "eth0", ["10.231.0.1/24", "2001:db8:231::1/64"], b, "eth0", [
    "10.231.0.2/24",
    "2001:db8:231::2/64",
  ]);
  return { a, b };
}

const established = (birdc: (a: string) => Promise<string>) => async () =>
  /Established/.test(await birdc("show protocols ours"));

for (const v6 of [false, true]) {
  const fam = v6 ? "IPv6" : "IPv4";
  const birdAddr = v6 ? "2001:db8:231::2" : "10.231.0.2";
  const ourAddr = v6 ? "2001:db8:231::1" : "10.231.0.1";

  Deno.test(
    `md5/bird ${fam}: we connect with the right password → Established on both sides`,
    OPTS,
    async () => {
      const lab = new Lab();
      try {
        const { a, b } = await setup(lab);
        const birdc = await lab.bird(b, "bird", birdConf({ v6, password: "Ab9-s3cret", passive: true }));
        const agent = lab.agent(a, {
          mode: "connect",
          host: birdAddr,
          localAddress: ourAddr,
          password: "Ab9-s3cret",
          asn: 64513,
          routerId: "10.231.0.1",
        });
        const ev = await agent.waitEvent(
          (e) => e.event === "established" || e.event === "error",
          "established",
        );
        assert.equal(ev.event, "established", JSON.stringify(ev));
        await waitFor("BIRD reports Established", established(birdc));
        assert.match(await birdc("show protocols all ours"), new RegExp(`Neighbor address: ${ourAddr}`));
      } finally {
        await lab.close();
      }
    },
  );

  Deno.test(
    `md5/bird ${fam}: BIRD connects to our listener with the right password → Established`,
    OPTS,
    async () => {
      const lab = new Lab();
      try {
        const { a, b } = await setup(lab);
        const agent = lab.agent(a, {
          mode: "listen",
          host: v6 ? "::" : "0.0.0.0",
          port: 179,
          passwords: { [birdAddr]: "listen-pw" },
          asn: 64513,
          routerId: "10.231.0.1",
        });
        await agent.waitEvent((e) => e.event === "listening", "listening");
        const birdc = await lab.bird(b, "bird", birdConf({ v6, password: "listen-pw", passive: false }));
        const ev = await agent.waitEvent((e) => e.event === "established", "established", 20000);
        assert.equal(ev.peer, birdAddr);
        await waitFor("BIRD reports Established", established(birdc));
      } finally {
        await lab.close();
      }
    },
  );
}

Deno.test(
  "md5/bird IPv4: we connect with a wrong password → no connection, BIRD's kernel counts MD5 failures",
  OPTS,
  async () => {
    const lab = new Lab();
    try {
      const { a, b } = await setup(lab);
      const birdc = await lab.bird(b, "bird", birdConf({ password: "right", passive: true }));
      const before = await lab.counter(b, "TcpExtTCPMD5Failure");
      const agent = lab.agent(a, {
        mode: "connect",
        host: "10.231.0.2",
        password: "wrong",
        asn: 64513,
        routerId: "10.231.0.1",
        connectTimeoutMs: 4000,
      });
      const ev = await agent.waitEvent(
        (e) => e.event === "error" || e.event === "connected",
        "connect outcome",
      );
      assert.equal(ev.event, "error", JSON.stringify(ev));
      assert.equal(ev.name, "TimeoutError");
      assert.ok(
        (await lab.counter(b, "TcpExtTCPMD5Failure")) > before,
        "BIRD's kernel saw a bad MD5 signature",
      );
      assert.doesNotMatch(await birdc("show protocols ours"), /Established/);

      // No password at all: the kernel of BIRD's side drops the unsigned SYN too.
      const beforeMissing = await lab.counter(b, "TcpExtTCPMD5NotFound");
      const agent2 = lab.agent(a, {
        mode: "connect",
        host: "10.231.0.2",
        localAddress: "10.231.0.1",
        asn: 64513,
        routerId: "10.231.0.1",
        connectTimeoutMs: 3000,
      });
      const ev2 = await agent2.waitEvent(
        (e) => e.event === "error" || e.event === "connected",
        "connect outcome",
      );
      assert.equal(ev2.event, "error", JSON.stringify(ev2));
      assert.ok((await lab.counter(b, "TcpExtTCPMD5NotFound")) > beforeMissing, "unsigned SYN counted");
    } finally {
      await lab.close();
    }
  },
);

Deno.test(
  "md5/bird IPv4: BIRD with a wrong password is refused by our listener until setPassword fixes the key",
  OPTS,
  async () => {
    const lab = new Lab();
    try {
      const { a, b } = await setup(lab);
      const agent = lab.agent(a, {
        mode: "listen",
        host: "0.0.0.0",
        port: 179,
        passwords: { "10.231.0.2": "ours" },
        asn: 64513,
        routerId: "10.231.0.1",
      });
      await agent.waitEvent((e) => e.event === "listening", "listening");
      const birdc = await lab.bird(b, "bird", birdConf({ password: "theirs", passive: false }));
      await waitFor(
        "our kernel rejects BIRD's SYNs",
        async () => (await lab.counter(a, "TcpExtTCPMD5Failure")) >= 2,
      );
      assert.ok(!agent.has("accepted"), "nothing was accepted with a wrong password");
      assert.doesNotMatch(await birdc("show protocols ours"), /Established/);

      // Change the key on the live listening socket: BIRD's next attempt gets in.
      await agent.send("setpw 10.231.0.2 theirs");
      await agent.waitEvent((e) => e.event === "setpw", "setpw");
      await agent.waitEvent((e) => e.event === "established", "established after setPassword", 20000);
      await waitFor("BIRD reports Established", established(birdc), 20000);
    } finally {
      await lab.close();
    }
  },
);

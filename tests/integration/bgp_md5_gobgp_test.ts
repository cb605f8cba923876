/**
 * TCP MD5 between our FFI sockets and gobgpd (`auth-password`), both directions, IPv4.
 * Our side is the agent script (bgp_md5_agent.ts) in namespace `bgt-a-*`.
 *
 * Addresses: link a(eth0) ⇄ b(eth0), 10.232.0.1/24 (ours, AS 64513) and 10.232.0.2/24
 * (gobgpd, AS 64512, API on 127.0.0.1:50051 inside `bgt-b-*`).
 */
import assert from "node:assert/strict";
import { Lab, waitFor } from "./bgp_md5_lab.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };

function gobgpConf(o: { password: string; passive: boolean }): string {
  return `[global.config]
  as = 64512
  router-id = "10.232.0.2"
  local-address-list = ["10.232.0.2"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.232.0.1"
    peer-as = 64513
    auth-password = "${o.password}"
  [neighbors.transport.config]
    passive-mode = ${o.passive}
  [neighbors.timers.config]
    connect-retry = 2
    hold-time = 30
    keepalive-interval = 10
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
`;
}

async function setup(lab: Lab) {
  const a = await lab.ns("a");
  const b = await lab.ns("b");
  await lab.link(a, "eth0", ["10.232.0.1/24"], b, "eth0", ["10.232.0.2/24"]);
  return { a, b };
}

/** The session state column of `gobgp neighbor` for our address ("Establ", "Active", ...). */
async function gobgpState(cli: (a: string[]) => Promise<string>): Promise<string> {
  const line = (await cli(["neighbor"])).split("\n").find((l) => l.trim().startsWith("10.232.0.1"));
  return line ?? "";
}

Deno.test(
  "md5/gobgp: we connect with the right password → Established; a wrong one is refused",
  OPTS,
  async () => {
    const lab = new Lab();
    try {
      const { a, b } = await setup(lab);
      const cli = await lab.gobgp(b, "gobgpd", gobgpConf({ password: "go-pw", passive: true }));

      const bad = lab.agent(a, {
        mode: "connect",
        host: "10.232.0.2",
        password: "not-go-pw",
        asn: 64513,
        routerId: "10.232.0.1",
        connectTimeoutMs: 3000,
      });
      const evBad = await bad.waitEvent(
        (e) => e.event === "error" || e.event === "connected",
        "connect outcome",
      );
      assert.equal(evBad.event, "error", JSON.stringify(evBad));
      assert.ok((await lab.counter(b, "TcpExtTCPMD5Failure")) > 0, "gobgpd's kernel saw the bad signature");
      await bad.stop();

      const good = lab.agent(a, {
        mode: "connect",
        host: "10.232.0.2",
        password: "go-pw",
        asn: 64513,
        routerId: "10.232.0.1",
      });
      const ev = await good.waitEvent((e) => e.event === "established" || e.event === "error", "established");
      assert.equal(ev.event, "established", JSON.stringify(ev));
      await waitFor("gobgp reports established", async () => /\bEstabl/.test(await gobgpState(cli)));
    } finally {
      await lab.close();
    }
  },
);

Deno.test(
  "md5/gobgp: gobgpd connects to our listener; wrong key refused, right key Established",
  OPTS,
  async () => {
    const lab = new Lab();
    try {
      const { a, b } = await setup(lab);
      const agent = lab.agent(a, {
        mode: "listen",
        host: "0.0.0.0",
        port: 179,
        passwords: { "10.232.0.2": "other" },
        asn: 64513,
        routerId: "10.232.0.1",
      });
      await agent.waitEvent((e) => e.event === "listening", "listening");
      const cli = await lab.gobgp(b, "gobgpd", gobgpConf({ password: "go-pw", passive: false }));
      await waitFor(
        "our kernel rejects gobgpd's SYNs",
        async () => (await lab.counter(a, "TcpExtTCPMD5Failure")) >= 1,
      );
      assert.ok(!agent.has("accepted"));
      await agent.send("setpw 10.232.0.2 go-pw");
      await agent.waitEvent((e) => e.event === "established", "established", 25000);
      await waitFor("gobgp reports established", async () => /\bEstabl/.test(await gobgpState(cli)));
    } finally {
      await lab.close();
    }
  },
);

/** Status CLI and admin API unit tests. Addresses: peers in 192.0.2.0/24, routes 10.201.0.0/16. */
import assert from "node:assert/strict";
import { adminHandler, type SpeakerView } from "./admin.ts";
import { formatPeers, formatUptime, parseBgpStatusArgs } from "./status_cli.ts";

Deno.test("bgp status args", () => {
  assert.deepEqual(parseBgpStatusArgs(["routes", "--json", "--table=in", "--peer", "192.0.2.2"]), {
    what: "routes",
    json: true,
    address: "127.0.0.1",
    port: 50051,
    table: "in",
    peer: "192.0.2.2",
  });
  assert.throws(() => parseBgpStatusArgs(["neighbors"]), /"neighbors" is not a subcommand/);
  assert.throws(() => parseBgpStatusArgs(["peers", "--admin-port", "0"]), /not a port/);
  assert.equal(parseBgpStatusArgs(["--help"]).help, true);
});

Deno.test("peer table: the last error, on one line", () => {
  const t = formatPeers([{
    address: "192.0.2.3",
    asn: 64513,
    state: "Active",
    uptimeMs: 0,
    prefixesReceived: 0,
    prefixesAccepted: 0,
    prefixesAdvertised: 0,
    messagesIn: 0,
    messagesOut: 0,
    updatesIn: 0,
    updatesOut: 0,
    updateErrors: 0,
    lastError: "NOTIFICATION received: Cease\n(administrative shutdown)",
  }]);
  const [head, row] = t.split("\n");
  assert.match(head, /LAST ERROR$/);
  assert.match(row, /Active +never .* - +NOTIFICATION received: Cease \(administrative shutdown\)$/);
});

Deno.test("peer table", () => {
  assert.equal(formatUptime(3_723_000), "1h2m");
  const t = formatPeers([{
    address: "192.0.2.2",
    asn: 64512,
    state: "Established",
    uptimeMs: 42_000,
    prefixesReceived: 3,
    prefixesAccepted: 2,
    prefixesAdvertised: 1,
    messagesIn: 0,
    messagesOut: 0,
    updatesIn: 0,
    updatesOut: 0,
    updateErrors: 0,
    description: "node node-2",
  }]);
  assert.equal(
    t,
    "PEER       ASN    STATE        UPTIME  RECEIVED  ACCEPTED  ADVERTISED  DESCRIPTION  LAST ERROR\n" +
      "192.0.2.2  64512  Established  42s     3         2         1           node node-2  -\n",
  );
});

Deno.test("admin API: /peers, /routes validation", async () => {
  const view: SpeakerView = {
    peers: () => [],
    locRib: () => [{
      prefix: { afi: 1, addr: "10.201.2.0", len: 24 },
      attrs: { origin: 0, asPath: [{ type: 2, asns: [64600] }] },
      nextHop: "192.0.2.2",
      source: "192.0.2.2",
      sourceAsn: 64600,
      ebgp: true,
      stale: false,
      // deno-lint-ignore no-explicit-any
    } as any],
    adjRibIn: () => [],
    adjRibOut: () => [],
  };
  const h = adminHandler(() => view);
  const r = await h(new Request("http://x/routes?table=loc")).json();
  assert.deepEqual(r, [{
    prefix: "10.201.2.0/24",
    nextHop: "192.0.2.2",
    source: "192.0.2.2",
    asPath: [64600],
    origin: 0,
    stale: false,
  }]);
  assert.equal(h(new Request("http://x/routes?table=in")).status, 400);
  assert.equal(h(new Request("http://x/routes?table=zz")).status, 400);
  assert.equal(h(new Request("http://x/nope")).status, 404);
});

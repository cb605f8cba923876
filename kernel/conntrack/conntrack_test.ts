// Unit tests of conntrack argv rendering and output parsing. Addresses: VIP 10.96.0.53,
// endpoint 10.201.0.5, IPv6 VIP 2001:db8:96::53.
import assert from "node:assert/strict";
import { deleteArgv, parseDeletedCount } from "./mod.ts";

Deno.test("deleteArgv: one filter per removed endpoint, IPv6 gets -f ipv6", () => {
  assert.deepEqual(
    deleteArgv({
      protocol: "udp",
      origDst: "10.96.0.53",
      origDstPort: 53,
      replySrc: "10.201.0.5",
      replySrcPort: 5353,
    }),
    [
      "conntrack",
      "-D",
      "-p",
      "udp",
      "--orig-dst",
      "10.96.0.53",
      "--orig-port-dst",
      "53",
      "--reply-src",
      "10.201.0.5",
      "--reply-port-src",
      "5353",
    ],
  );
  assert.deepEqual(deleteArgv({ protocol: "udp", origDst: "2001:db8:96::53", origDstPort: 53 }).slice(0, 4), [
    "conntrack",
    "-D",
    "-f",
    "ipv6",
  ]);
});

Deno.test("parseDeletedCount reads conntrack's summary line", () => {
  assert.equal(
    parseDeletedCount("conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted.\n"),
    3,
  );
  assert.equal(
    parseDeletedCount("conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n"),
    0,
  );
  assert.equal(parseDeletedCount(""), 0);
});

import assert from "node:assert/strict";
import fc from "fast-check";
import { canonicalIp, formatIPv6, parseIPv4, parseIPv6 } from "./ip.ts";
import { formatPrefix, parsePrefix } from "./nlri.ts";

// Addresses with many zero groups exercise the `::` choice.
const sparse16 = fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
  minLength: 8,
  maxLength: 8,
}).map((g) => {
  const b = new Uint8Array(16);
  g.forEach((v, i) => {
    b[2 * i] = v >> 8;
    b[2 * i + 1] = v & 255;
  });
  return b;
});

Deno.test("formatIPv6 matches the WHATWG URL serializer (RFC 5952 form)", () => {
  fc.assert(
    fc.property(fc.oneof(sparse16, fc.uint8Array({ minLength: 16, maxLength: 16 })), (b) => {
      const s = formatIPv6(b);
      assert.equal(`[${s}]`, new URL(`http://[${s}]/`).hostname);
      assert.deepStrictEqual(parseIPv6(s), b);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("formatIPv6 examples", () => {
  const f = (s: string) => formatIPv6(parseIPv6(s)!);
  assert.equal(f("0:0:0:0:0:0:0:0"), "::");
  assert.equal(f("0:0:0:0:0:0:0:1"), "::1");
  assert.equal(f("2001:DB8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
  assert.equal(f("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
  assert.equal(f("fe80::0001"), "fe80::1");
  assert.equal(f("::ffff:1.2.3.4"), "::ffff:102:304");
  assert.equal(f("1:0:0:2:0:0:0:3"), "1:0:0:2::3");
});

Deno.test("parseIPv6 rejects malformed text", () => {
  for (
    const s of [
      "",
      ":",
      ":::",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      "12345::",
      "1:2:3:4:5:6:7",
      "::g",
      "1:",
      ":1",
      "fe80::1%eth0",
      "::1.2.3",
    ]
  ) {
    assert.equal(parseIPv6(s), null, s);
  }
  assert.deepStrictEqual(
    parseIPv6("1:2:3:4:5:6:1.2.3.4"),
    new Uint8Array([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4]),
  );
});

Deno.test("parseIPv4 accepts dotted quads only", () => {
  assert.equal(parseIPv4("10.0.0.1"), 0x0a000001);
  assert.equal(parseIPv4("255.255.255.255"), 0xffffffff);
  for (const s of ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "a.b.c.d", "1.2.3.4 "]) {
    assert.equal(parseIPv4(s), -1, s);
  }
  assert.equal(canonicalIp("2001:DB8::0:1"), "2001:db8::1");
  assert.equal(canonicalIp("nope"), null);
});

Deno.test("parsePrefix clears host bits and canonicalises", () => {
  assert.deepEqual(parsePrefix("10.1.2.3/16"), { afi: 1, addr: "10.1.0.0", len: 16 });
  assert.deepEqual(parsePrefix("10.1.2.3/0"), { afi: 1, addr: "0.0.0.0", len: 0 });
  assert.deepEqual(parsePrefix("2001:DB8:1:2::5/33"), { afi: 2, addr: "2001:db8::", len: 33 });
  assert.deepEqual(parsePrefix("2001:db8:ffff::/35"), { afi: 2, addr: "2001:db8:e000::", len: 35 });
  assert.equal(parsePrefix("10.0.0.0/33"), null);
  assert.equal(parsePrefix("::/129"), null);
  assert.equal(parsePrefix("10.0.0.0"), null);
  assert.equal(formatPrefix(parsePrefix("192.0.2.1/24")!), "192.0.2.0/24");
});

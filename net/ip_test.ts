// Unit and property tests of net/ip.ts. Addresses: 192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32,
// plus random bytes in the properties.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  canonicalIp,
  cidrContains,
  cidrContainsBytes,
  cidrCovers,
  clearHostBits,
  formatCidr,
  formatIp,
  formatIPv4Number,
  formatIPv6,
  hasHostBits,
  ipFamily,
  isIP,
  isIPv4,
  isIPv6,
  parseCidr,
  parseIp,
  parseIPv4,
  parseIPv6,
} from "./ip.ts";

// Many zero groups exercise the choice of the `::` run.
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
const bytes4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
const bytes16 = fc.oneof(sparse16, fc.uint8Array({ minLength: 16, maxLength: 16 }));

Deno.test("parse∘format round trip for random 4- and 16-byte addresses", () => {
  fc.assert(
    fc.property(fc.oneof(bytes4, bytes16), (b) => {
      const text = formatIp(b);
      assert.deepStrictEqual(parseIp(text), b);
      assert.equal(canonicalIp(text), text);
      assert.equal(ipFamily(text), b.length === 4 ? 4 : 6);
    }),
    { numRuns: 3000 },
  );
});

Deno.test("IPv6 text is RFC 5952 as the WHATWG URL serializer writes it", () => {
  fc.assert(
    fc.property(bytes16, (b) => {
      const s = formatIPv6(b);
      assert.equal(`[${s}]`, new URL(`http://[${s}]/`).hostname);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("any spelling of an address (upper case, leading zeros, uncompressed) canonicalises", () => {
  fc.assert(
    fc.property(bytes16, fc.boolean(), fc.boolean(), (b, upper, pad) => {
      const groups: string[] = [];
      for (let i = 0; i < 8; i++) {
        let g = ((b[2 * i] << 8) | b[2 * i + 1]).toString(16);
        if (pad) g = g.padStart(4, "0");
        groups.push(upper ? g.toUpperCase() : g);
      }
      assert.equal(canonicalIp(groups.join(":")), formatIPv6(b));
    }),
    { numRuns: 1000 },
  );
});

Deno.test("canonical form examples", () => {
  const cases: [string, string][] = [
    ["0:0:0:0:0:0:0:0", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // a single zero group is not compressed
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"], // the longest run wins
    ["1:0:0:2:0:0:3:4", "1::2:0:0:3:4"], // the first of equal runs wins
    ["fe80::0001", "fe80::1"],
    // IPv4-mapped: hex groups, never the dotted tail (module doc explains why).
    ["::ffff:1.2.3.4", "::ffff:102:304"],
    ["::FFFF:192.0.2.1", "::ffff:c000:201"],
    ["::192.0.2.1", "::c000:201"],
    ["1:2:3:4:5:6:198.51.100.7", "1:2:3:4:5:6:c633:6407"],
    ["192.0.2.1", "192.0.2.1"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
  ];
  for (const [input, want] of cases) assert.equal(canonicalIp(input), want, input);
});

Deno.test("malformed literals are rejected", () => {
  const bad = [
    "",
    " 192.0.2.1",
    "192.0.2.1 ",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "1..2.3",
    "a.b.c.d",
    "01.2.3.4", // leading zero: strict by default
    "1.2.3.04",
    "-1.2.3.4",
    ":",
    ":::",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7:8",
    "1::2::3",
    "12345::",
    "1:",
    ":1",
    "1:2:3:4:5:6:7:",
    "g::1",
    "::ffff:1.2.3",
    "::ffff:1.2.3.256",
    "::ffff:01.2.3.4",
    "1:2:3:4:5:6:7:1.2.3.4",
    "::1.2.3.4:5",
    "fe80::1%eth0",
    "[::1]",
    "2001:db8::/32",
    "example.com",
  ];
  for (const s of bad) {
    assert.equal(parseIp(s), null, JSON.stringify(s));
    assert.equal(canonicalIp(s), null, JSON.stringify(s));
    assert.equal(isIP(s), false, JSON.stringify(s));
  }
  assert.equal(parseIPv4("1.2.3.4"), 0x01020304);
  assert.equal(parseIPv6("1.2.3.4"), null);
  assert.ok(isIPv4("192.0.2.1") && !isIPv6("192.0.2.1"));
  assert.ok(isIPv6("2001:db8::1") && !isIPv4("2001:db8::1"));
});

Deno.test("leadingZeros option reads octets as decimal, at most three digits", () => {
  const lz = { leadingZeros: true };
  assert.equal(canonicalIp("010.001.000.009", lz), "10.1.0.9");
  assert.equal(canonicalIp("::ffff:010.0.0.1", lz), "::ffff:a00:1");
  assert.equal(canonicalIp("0010.0.0.1", lz), null);
  assert.equal(canonicalIp("256.0.0.1", lz), null);
  assert.ok(isIPv4("01.2.3.4", lz));
  assert.equal(isIPv4("01.2.3.4"), false);
});

Deno.test("random uint32 and dotted quads agree", () => {
  fc.assert(
    fc.property(fc.nat({ max: 0xffffffff }), (n) => {
      assert.equal(parseIPv4(formatIPv4Number(n)), n);
    }),
  );
});

Deno.test("CIDR parse: canonical network, host bits cleared, bad lengths rejected", () => {
  const c = parseCidr("192.0.2.77/24")!;
  assert.equal(c.family, 4);
  assert.equal(c.len, 24);
  assert.equal(formatCidr(c), "192.0.2.0/24");
  assert.equal(formatCidr(parseCidr("2001:DB8:0:0:1::5/64")!), "2001:db8::/64");
  assert.equal(formatCidr(parseCidr("198.51.100.7")!), "198.51.100.7/32");
  assert.equal(formatCidr(parseCidr("2001:db8::1")!), "2001:db8::1/128");
  assert.equal(parseCidr("198.51.100.7", { bareIsHost: false }), null);
  assert.equal(formatCidr(parseCidr("0.0.0.0/0")!), "0.0.0.0/0");
  assert.equal(formatCidr(parseCidr("ffff::/0")!), "::/0");
  for (const s of ["192.0.2.0/33", "2001:db8::/129", "192.0.2.0/", "192.0.2.0/-1", "192.0.2.0/8/8", "/8"]) {
    assert.equal(parseCidr(s), null, s);
  }
  for (const s of ["192.0.2.0/ 8", "192.0.2.0/0x8", "192.0.2.0/1e1", "192.0.2.0/0008", " 192.0.2.0/24"]) {
    assert.equal(parseCidr(s), null, s);
  }
  assert.equal(formatCidr(parseCidr("010.0.0.0/8", { leadingZeros: true })!), "10.0.0.0/8");
  assert.equal(parseCidr("010.0.0.0/8"), null);
});

Deno.test("CIDR contains, covers and host bits", () => {
  const net = parseCidr("198.51.100.0/22")!;
  assert.ok(cidrContains(net, "198.51.100.1"));
  assert.ok(cidrContains(net, "198.51.103.255"));
  assert.ok(!cidrContains(net, "198.51.104.0"));
  assert.ok(!cidrContains(net, "::ffff:198.51.100.1")); // another family never matches
  assert.ok(!cidrContains(net, "not an address"));
  const v6 = parseCidr("2001:db8:1::/48")!;
  assert.ok(cidrContains(v6, "2001:db8:1:ffff::1"));
  assert.ok(!cidrContains(v6, "2001:db8:2::1"));
  assert.ok(cidrContains(parseCidr("::/0")!, "2001:db8::1"));
  assert.ok(cidrCovers(net, parseCidr("198.51.101.0/24")!));
  assert.ok(!cidrCovers(parseCidr("198.51.101.0/24")!, net));
  assert.ok(hasHostBits(parseIp("192.0.2.1")!, 24));
  assert.ok(!hasHostBits(parseIp("192.0.2.0")!, 24));
  assert.ok(!hasHostBits(parseIp("192.0.2.1")!, 32));
  assert.ok(hasHostBits(parseIp("2001:db8::1")!, 64));
});

Deno.test("CIDR properties: the network contains every address it was parsed from", () => {
  fc.assert(
    fc.property(fc.oneof(bytes4, bytes16), fc.nat({ max: 128 }), (b, n) => {
      const len = n % (b.length * 8 + 1);
      const c = parseCidr(`${formatIp(b)}/${len}`)!;
      assert.equal(c.len, len);
      assert.ok(cidrContainsBytes(c, b));
      assert.equal(hasHostBits(c.bytes, len), false);
      assert.equal(hasHostBits(b, len), formatIp(c.bytes) !== formatIp(b));
      assert.deepStrictEqual(clearHostBits(b.slice(), len), c.bytes);
      // Flipping a network bit leaves the prefix; flipping a host bit stays inside.
      if (len > 0) {
        const out = b.slice();
        out[(len - 1) >> 3] ^= 0x80 >> ((len - 1) & 7);
        assert.ok(!cidrContainsBytes(c, out));
      }
      if (len < b.length * 8) {
        const inside = b.slice();
        inside[len >> 3] ^= 0x80 >> (len & 7);
        assert.ok(cidrContainsBytes(c, inside));
      }
      assert.equal(formatCidr(parseCidr(formatCidr(c))!), formatCidr(c));
    }),
    { numRuns: 2000 },
  );
});

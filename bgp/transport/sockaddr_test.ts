import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeSockaddr, encodeSockaddr, formatIp, mapV4, parseIp, unmapV4 } from "./sockaddr.ts";
import { encodeMd5Sig, MD5SIG_SIZE } from "./md5.ts";

Deno.test("parseIp/formatIp: IPv4 and IPv6 canonical forms", () => {
  const cases: Array<[string, string]> = [
    ["10.250.0.1", "10.250.0.1"],
    ["2001:db8::1", "2001:db8::1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["::", "::"],
    ["::1", "::1"],
    ["fe80::1%eth0", "fe80::1%eth0"],
    ["::ffff:10.0.0.1", "::ffff:a00:1"],
    ["2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["2001:0:0:0:1:0:0:1", "2001::1:0:0:1"],
  ];
  for (const [input, want] of cases) assert.equal(formatIp(parseIp(input)!), want, input);
  for (
    const bad of ["", "1.2.3", "1.2.3.256", "01.2.3.4", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "fe80::1%"]
  ) {
    assert.equal(parseIp(bad), null, bad);
  }
});

Deno.test("parseIp/formatIp round-trip random IPv6 addresses", () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
    const text = formatIp({ family: 6, bytes });
    assert.deepEqual(parseIp(text)!.bytes, bytes);
  }));
});

Deno.test("mapV4/unmapV4", () => {
  const a = parseIp("192.0.2.7")!;
  const m = mapV4(a);
  assert.equal(m.family, 6);
  assert.deepEqual(unmapV4(m), a);
  assert.equal(formatIp(unmapV4(parseIp("::ffff:192.0.2.7")!)), "192.0.2.7");
});

Deno.test("encodeSockaddr: sockaddr_in and sockaddr_in6 layouts", () => {
  const v4 = encodeSockaddr(parseIp("192.0.2.1")!, 179);
  assert.equal(v4.len, 16);
  assert.deepEqual([...v4.buf.subarray(0, 8)], [2, 0, 0, 179, 192, 0, 2, 1]);
  const v6 = encodeSockaddr(parseIp("2001:db8::2")!, 3784, 7);
  assert.equal(v6.len, 28);
  assert.deepEqual([...v6.buf.subarray(0, 4)], [10, 0, 0x0e, 0xc8]);
  assert.equal(v6.buf[8], 0x20);
  assert.equal(v6.buf[23], 2);
  assert.equal(v6.buf[24], 7);
  const d = decodeSockaddr(v6.buf)!;
  assert.equal(formatIp(d.addr), "2001:db8::2");
  assert.equal(d.port, 3784);
  assert.equal(d.scopeId, 7);
});

Deno.test("encodeMd5Sig: struct tcp_md5sig layout, delete form, key length limit", () => {
  const b = encodeMd5Sig(parseIp("10.250.0.2")!, "s3cret");
  assert.equal(b.length, MD5SIG_SIZE);
  assert.deepEqual([...b.subarray(0, 8)], [2, 0, 0, 0, 10, 250, 0, 2]);
  assert.deepEqual([...b.subarray(130, 132)], [6, 0]);
  assert.equal(new TextDecoder().decode(b.subarray(136, 142)), "s3cret");
  const del = encodeMd5Sig(parseIp("10.250.0.2")!, null);
  assert.deepEqual([...del.subarray(130, 132)], [0, 0]);
  assert.throws(() => encodeMd5Sig(parseIp("10.250.0.2")!, "x".repeat(81)), RangeError);
});

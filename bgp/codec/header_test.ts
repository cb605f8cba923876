import assert from "node:assert/strict";
import type { BgpError } from "./errors.ts";
import { frame } from "./header.ts";
import { decode, encode, MessageReader } from "./message.ts";
import { ceaseWithCommunication, shutdownCommunication } from "./notification.ts";
import { defaultCodecContext as ctx } from "./types.ts";

function header(length: number, type: number, total = length): Uint8Array {
  const b = new Uint8Array(Math.max(total, 19)).fill(0);
  b.fill(0xff, 0, 16);
  b[16] = length >> 8;
  b[17] = length & 255;
  b[18] = type;
  return b;
}

function err(b: Uint8Array, c = ctx): BgpError {
  const r = decode(b, c);
  assert.ok(!r.ok, "expected an error");
  return r.error;
}

Deno.test("header: RFC 4271 §6.1 checks with their data", () => {
  const bad = header(19, 4);
  bad[3] = 0;
  let e = err(bad);
  assert.deepEqual([e.code, e.subcode, e.handling], [1, 1, "session-reset"]);
  e = err(header(18, 4));
  assert.deepEqual([e.code, e.subcode, [...e.data]], [1, 2, [0, 18]]);
  e = err(header(20, 4));
  assert.deepEqual([e.code, e.subcode, [...e.data]], [1, 2, [0, 20]]);
  e = err(header(4097, 2));
  assert.deepEqual([e.code, e.subcode, [...e.data]], [1, 2, [0x10, 0x01]]);
  e = err(header(28, 1));
  assert.deepEqual([e.code, e.subcode, [...e.data]], [1, 2, [0, 28]]);
  e = err(header(22, 2));
  assert.deepEqual([e.code, e.subcode], [1, 2]);
  e = err(header(20, 3));
  assert.deepEqual([e.code, e.subcode], [1, 2]);
  e = err(header(19, 9));
  assert.deepEqual([e.code, e.subcode, [...e.data]], [1, 3, [9]]);
  e = err(header(19, 0));
  assert.deepEqual([e.code, e.subcode, [...e.data]], [1, 3, [0]]);
});

Deno.test("header: extended messages raise the UPDATE limit, never OPEN/KEEPALIVE's (RFC 8654 §4)", () => {
  const ext = { ...ctx, extendedMessages: true };
  const f = frame(header(5000, 2, 5000), ext);
  assert.equal(f.kind, "message");
  const o = frame(header(5000, 1, 5000), ext);
  assert.equal(o.kind, "error");
});

Deno.test("header: truncated input and framing", () => {
  const ka = encode({ type: 4 }, ctx);
  assert.deepEqual(frame(ka.subarray(0, 10), ctx), { kind: "need-more", need: 9 });
  assert.deepEqual(frame(ka, ctx), { kind: "message", type: 4, length: 19 });
  const e = err(encode({ type: 3, code: 6, subcode: 2, data: new Uint8Array(4) }, ctx).subarray(0, 22));
  assert.deepEqual([e.code, e.subcode], [1, 2]);
  assert.deepEqual([err(new Uint8Array(0)).code, err(new Uint8Array(0)).subcode], [1, 2]);
  // Garbage is rejected as soon as the first marker octet arrives.
  assert.equal(frame(new Uint8Array([0x16, 0x03]), ctx).kind, "error");
});

Deno.test("MessageReader: reassembles messages and reports a desynchronised stream", () => {
  const r = new MessageReader();
  const ka = encode({ type: 4 }, ctx);
  const n = encode({ type: 3, code: 6, subcode: 4, data: new Uint8Array([1, 2, 3]) }, ctx);
  r.push(ka.subarray(0, 5));
  assert.equal(r.next(ctx), null);
  r.push(ka.subarray(5));
  r.push(n);
  assert.deepEqual(r.next(ctx), { ok: true, msg: { type: 4 }, length: 19 });
  const m = r.next(ctx);
  assert.ok(m?.ok && m.msg.type === 3 && m.msg.data.length === 3);
  assert.equal(r.next(ctx), null);
  r.push(new Uint8Array(19));
  const bad = r.next(ctx);
  assert.ok(bad && !bad.ok && bad.error.code === 1 && bad.error.subcode === 1);
});

Deno.test("ROUTE-REFRESH: RFC 7313 §5 length check, subtypes pass through", () => {
  const rr = encode({ type: 5, afi: 2, safi: 1, subtype: 1 }, ctx);
  assert.deepEqual(decode(rr, ctx), { ok: true, msg: { type: 5, afi: 2, safi: 1, subtype: 1 }, length: 23 });
  const long = header(24, 5);
  const e = err(long);
  assert.deepEqual([e.code, e.subcode, e.data.length], [7, 1, 24]);
});

Deno.test("NOTIFICATION: RFC 9003 shutdown communication", () => {
  const n = ceaseWithCommunication(2, "maintenance — back at 12:00");
  const r = decode(encode(n, ctx), ctx);
  assert.ok(r.ok && r.msg.type === 3);
  assert.equal(shutdownCommunication(r.msg), "maintenance — back at 12:00");
  const long = ceaseWithCommunication(4, "é".repeat(200));
  assert.ok(long.data.length <= 256);
  assert.equal(shutdownCommunication(long), "é".repeat(127));
  assert.equal(
    shutdownCommunication({ type: 3, code: 6, subcode: 2, data: new Uint8Array([5, 0x41]) }),
    undefined,
  );
  assert.equal(
    shutdownCommunication({ type: 3, code: 6, subcode: 2, data: new Uint8Array([2, 0xc3, 0x28]) }),
    undefined,
  );
  assert.equal(
    shutdownCommunication({ type: 3, code: 6, subcode: 3, data: new Uint8Array([1, 0x41]) }),
    undefined,
  );
});

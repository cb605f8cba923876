import assert from "node:assert/strict";
import fc from "fast-check";
import { type ControlPacket, decodeControl, encodeControl, State } from "./packet.ts";

const base: ControlPacket = {
  version: 1,
  diag: 0,
  state: State.Down,
  poll: false,
  final: false,
  cpi: false,
  auth: false,
  demand: false,
  multipoint: false,
  detectMult: 3,
  myDiscr: 0x01020304,
  yourDiscr: 0,
  desiredMinTxUs: 1_000_000,
  requiredMinRxUs: 300_000,
  requiredMinEchoRxUs: 0,
};

Deno.test("bfd packet: encode layout matches RFC 5880 §4.1", () => {
  const b = encodeControl({ ...base, state: State.Up, poll: true, diag: 3, yourDiscr: 7 });
  assert.deepEqual([...b.subarray(0, 12)], [0x23, 0xe0, 3, 24, 1, 2, 3, 4, 0, 0, 0, 7]);
  assert.deepEqual([...b.subarray(12, 24)], [0x00, 0x0f, 0x42, 0x40, 0x00, 0x04, 0x93, 0xe0, 0, 0, 0, 0]);
});

Deno.test("bfd packet: a Down packet with an echo interval decodes field by field", () => {
  // Hand-built: version 1, state Down, mult 3, my discr 0x4c5a1b2f, desired 1 s, required 300 ms.
  const bytes = new Uint8Array([
    0x20,
    0x40,
    0x03,
    0x18,
    0x4c,
    0x5a,
    0x1b,
    0x2f,
    0,
    0,
    0,
    0,
    0x00,
    0x0f,
    0x42,
    0x40,
    0x00,
    0x04,
    0x93,
    0xe0,
    0x00,
    0x00,
    0xc3,
    0x50,
  ]);
  const r = decodeControl(bytes);
  assert.ok(r.ok);
  assert.equal(r.packet.state, State.Down);
  assert.equal(r.packet.myDiscr, 0x4c5a1b2f);
  assert.equal(r.packet.requiredMinRxUs, 300_000);
  assert.equal(r.packet.requiredMinEchoRxUs, 50_000);
});

Deno.test("bfd packet: §6.8.6 discards", () => {
  const ok = encodeControl(base);
  const mutate = (f: (b: Uint8Array) => void) => {
    const b = ok.slice();
    f(b);
    return decodeControl(b);
  };
  assert.deepEqual(decodeControl(ok.subarray(0, 23)), { ok: false, reason: "short" });
  assert.deepEqual(mutate((b) => b[0] = 0x40), { ok: false, reason: "version" });
  assert.deepEqual(mutate((b) => b[3] = 23), { ok: false, reason: "length" });
  assert.deepEqual(mutate((b) => b[3] = 30), { ok: false, reason: "length" });
  assert.deepEqual(mutate((b) => b[2] = 0), { ok: false, reason: "detect-mult-zero" });
  assert.deepEqual(mutate((b) => b[1] |= 1), { ok: false, reason: "multipoint" });
  assert.deepEqual(mutate((b) => b.fill(0, 4, 8)), { ok: false, reason: "my-discr-zero" });
  assert.deepEqual(mutate((b) => b[1] = 0xc0), { ok: false, reason: "your-discr-zero-not-down" });
  assert.deepEqual(mutate((b) => b[1] = 0x80), { ok: false, reason: "your-discr-zero-not-down" });
  // A bit with a plausible 26-byte length: we run no authentication, so it is discarded.
  const withAuth = new Uint8Array(26);
  withAuth.set(ok);
  withAuth[1] |= 0x04;
  withAuth[3] = 26;
  assert.deepEqual(decodeControl(withAuth), { ok: false, reason: "auth-unsupported" });
  // AdminDown with your discr 0 is allowed.
  assert.ok(mutate((b) => b[1] = 0x00).ok);
});

Deno.test("bfd packet: round-trip and never throws on random bytes", () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
    const r = decodeControl(bytes);
    if (r.ok) assert.deepEqual(decodeControl(encodeControl(r.packet)), r);
  }));
  fc.assert(fc.property(
    fc.record({
      diag: fc.integer({ min: 0, max: 31 }),
      state: fc.constantFrom(State.Down, State.AdminDown),
      poll: fc.boolean(),
      final: fc.boolean(),
      detectMult: fc.integer({ min: 1, max: 255 }),
      myDiscr: fc.integer({ min: 1, max: 0xffffffff }),
      desiredMinTxUs: fc.integer({ min: 0, max: 0xffffffff }),
      requiredMinRxUs: fc.integer({ min: 0, max: 0xffffffff }),
    }),
    (f) => {
      const p = { ...base, ...f };
      const r = decodeControl(encodeControl(p));
      assert.ok(r.ok);
      assert.deepEqual(r.packet, p);
    },
  ));
});

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

const hex = (h: string) => new Uint8Array(h.replaceAll(" ", "").match(/../g)!.map((x) => parseInt(x, 16)));

Deno.test("bfd packet: real packets captured from FRR 8.4 bfdd (tcpdump in the interop lab) decode", () => {
  // bfdd → us, its first reply: Init, your-discr = ours, 1 s / 1 s while not Up, echo 50 ms.
  const init = decodeControl(hex("2080 0318 5514 708b 2768 9616 000f 4240 000f 4240 0000 c350"));
  assert.ok(init.ok);
  assert.equal(init.packet.state, State.Init);
  assert.equal(init.packet.myDiscr, 0x5514708b);
  assert.equal(init.packet.yourDiscr, 0x27689616);
  assert.equal(init.packet.desiredMinTxUs, 1_000_000);
  assert.equal(init.packet.requiredMinEchoRxUs, 50_000);
  // bfdd → us once Up: Poll to move to its configured 100 ms.
  const poll = decodeControl(hex("20e0 0318 5514 708b 2768 9616 0001 86a0 0001 86a0 0000 c350"));
  assert.ok(poll.ok);
  assert.equal(poll.packet.state, State.Up);
  assert.ok(poll.packet.poll && !poll.packet.final);
  assert.equal(poll.packet.desiredMinTxUs, 100_000);
});

Deno.test("bfd packet: our encoding is byte-identical to what the capture showed us sending", () => {
  // us → bfdd: Up + Final answering its Poll.
  const wire = hex("20d0 0318 2768 9616 5514 708b 0001 86a0 0001 86a0 0000 0000");
  const r = decodeControl(wire);
  assert.ok(r.ok);
  assert.deepEqual(encodeControl(r.packet), wire);
  assert.ok(r.packet.final && !r.packet.poll);
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

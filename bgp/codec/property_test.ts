/**
 * Property tests: arbitrary valid messages round-trip (encode → decode → deep equal, and the
 * bytes re-encode identically); random and mutated bytes always give a typed result (a message
 * or a BgpError), never a throw; a byte stream split anywhere frames into the same messages.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { BgpError } from "./errors.ts";
import { decode, type DecodeResult, encode, MessageReader } from "./message.ts";
import { codecContext, openMessage, updateMessage } from "./test_arbitraries.ts";
import type { BgpMessage, CodecContext, UpdateMessage } from "./types.ts";
import { toHex } from "./bytes.ts";
import { AttributeCache } from "./attr_cache.ts";

const RUNS = Number(Deno.env.get("FC_RUNS") ?? 300);
// One cache across runs, so entries from earlier inputs are live while later ones are decoded.
const sharedCache = new AttributeCache(5000);

const ctxAndUpdate = codecContext.chain((ctx) => fc.tuple(fc.constant(ctx), updateMessage(ctx)));

const otherMessage: fc.Arbitrary<BgpMessage> = fc.oneof(
  openMessage,
  fc.constant({ type: 4 as const }),
  fc.record({
    type: fc.constant(3 as const),
    code: fc.integer({ min: 0, max: 255 }),
    subcode: fc.integer({ min: 0, max: 255 }),
    data: fc.uint8Array({ maxLength: 64 }),
  }, { noNullPrototype: true }),
  fc.record({
    type: fc.constant(5 as const),
    afi: fc.constantFrom(1 as const, 2 as const),
    safi: fc.constant(1 as const),
    subtype: fc.integer({ min: 0, max: 2 }),
  }, { noNullPrototype: true }),
);

const anyMessage: fc.Arbitrary<[CodecContext, BgpMessage]> = fc.oneof(
  ctxAndUpdate,
  fc.tuple(codecContext, otherMessage),
);

function checkTyped(r: DecodeResult, input: Uint8Array, ctx: CodecContext): void {
  assert.equal(typeof r.ok, "boolean");
  if (!r.ok) {
    assert.ok(r.error instanceof BgpError, "error is a BgpError");
    assert.ok(
      Number.isInteger(r.error.code) && r.error.code >= 1 && r.error.code <= 7,
      `code ${r.error.code}`,
    );
    assert.ok(r.error.data instanceof Uint8Array);
    assert.ok(["session-reset", "treat-as-withdraw", "attribute-discard"].includes(r.error.handling));
    return;
  }
  assert.ok(r.length >= 19 && r.length <= input.length);
  // Whatever decodes must encode again (a decoded message is always a valid message object).
  const again = encode(r.msg, { ...ctx, extendedMessages: true });
  const back = decode(again, { ...ctx, extendedMessages: true });
  assert.ok(back.ok || back.error.handling !== "session-reset", "re-encoded message decodes");
}

Deno.test("property: UPDATE encode → decode is the identity and re-encodes byte-exact", () => {
  fc.assert(
    fc.property(ctxAndUpdate, ([ctx, m]) => {
      const bytes = encode(m, ctx);
      const r = decode(bytes, ctx);
      assert.ok(r.ok, r.ok ? "" : r.error.message);
      assert.deepStrictEqual(r.msg, m);
      assert.equal(r.length, bytes.length);
      assert.deepStrictEqual(encode(r.msg, ctx), bytes);
      // A frozen (interned) attribute set encodes the same, first time and from the encode cache.
      const frozen = { ...m, attrs: Object.freeze({ ...m.attrs }) };
      assert.deepStrictEqual(encode(frozen, ctx), bytes);
      assert.deepStrictEqual(encode(frozen, ctx), bytes);
      // The attribute cache gives equal results.
      const cache = new AttributeCache();
      const c1 = decode(bytes, ctx, { attrCache: cache });
      const c2 = decode(bytes, ctx, { attrCache: cache });
      assert.ok(c1.ok && c2.ok);
      assert.deepStrictEqual(c2.msg, m);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("property: OPEN, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH round-trip", () => {
  fc.assert(
    fc.property(codecContext, otherMessage, (ctx, m) => {
      const bytes = encode(m, ctx);
      const r = decode(bytes, ctx);
      assert.ok(r.ok, r.ok ? "" : r.error.message);
      assert.deepStrictEqual(r.msg, m);
      assert.deepStrictEqual(encode(r.msg, ctx), bytes);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("property: random bytes never throw", () => {
  const marker = new Uint8Array(16).fill(0xff);
  fc.assert(
    fc.property(
      codecContext,
      fc.uint8Array({ maxLength: 300 }),
      fc.integer({ min: 0, max: 5 }),
      (ctx, body, type) => {
        checkTyped(decode(body, ctx), body, ctx);
        // With a valid marker, length and type so the body decoders see the garbage.
        const b = new Uint8Array(19 + body.length);
        b.set(marker);
        b[16] = b.length >> 8;
        b[17] = b.length & 255;
        b[18] = type;
        b.set(body, 19);
        checkTyped(decode(b, ctx), b, ctx);
      },
    ),
    { numRuns: RUNS * 3 },
  );
});

const mutation = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }, {
    noNullPrototype: true,
  }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }, {
    noNullPrototype: true,
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }, { noNullPrototype: true }),
  fc.record({ kind: fc.constant("length" as const), at: fc.nat(), v: fc.integer({ min: 0, max: 65535 }) }, {
    noNullPrototype: true,
  }),
);

Deno.test("property: mutated valid messages never throw", () => {
  fc.assert(
    fc.property(anyMessage, fc.array(mutation, { minLength: 1, maxLength: 4 }), ([ctx, m], muts) => {
      let b = encode(m, ctx).slice();
      for (const mu of muts) {
        const at = b.length ? mu.at % b.length : 0;
        if (mu.kind === "flip" && b.length) b[at] ^= 1 << mu.bit;
        else if (mu.kind === "set" && b.length) b[at] = mu.v;
        else if (mu.kind === "truncate") b = b.slice(0, at);
        else if (mu.kind === "length" && b.length >= 2) {
          // Rewrite a 2-octet field (header length, withdrawn/attribute lengths, an attribute's length, ...).
          const p = Math.min(at, b.length - 2);
          b[p] = mu.v >> 8;
          b[p + 1] = mu.v & 255;
        }
      }
      checkTyped(decode(b, ctx), b, ctx);
      // Also with body errors forced past framing: fix up the header length.
      if (b.length >= 19) {
        b.fill(0xff, 0, 16);
        b[16] = b.length >> 8;
        b[17] = b.length & 255;
        const plain = decode(b, ctx);
        checkTyped(plain, b, ctx);
        // The attribute cache never changes a result (twice: miss, then hit).
        assert.deepStrictEqual(decode(b, ctx, { attrCache: sharedCache }), plain);
        assert.deepStrictEqual(decode(b, ctx, { attrCache: sharedCache }), plain);
      }
    }),
    { numRuns: RUNS * 3 },
  );
});

Deno.test("property: MessageReader frames a stream split at arbitrary points", () => {
  fc.assert(
    fc.property(
      codecContext,
      fc.array(otherMessage, { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
      (ctx, msgs, cuts) => {
        const parts = msgs.map((m) => encode(m, ctx));
        const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
        let o = 0;
        for (const p of parts) {
          all.set(p, o);
          o += p.length;
        }
        const reader = new MessageReader();
        const got: BgpMessage[] = [];
        let pos = 0;
        let i = 0;
        while (pos < all.length) {
          const n = cuts[i++ % cuts.length];
          reader.push(all.subarray(pos, pos + n));
          pos += n;
          for (let r = reader.next(ctx); r; r = reader.next(ctx)) {
            assert.ok(r.ok);
            got.push(r.msg);
          }
        }
        assert.deepStrictEqual(got, msgs);
        assert.equal(reader.buffered, 0);
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("property: MessageReader never throws on arbitrary chunks", () => {
  fc.assert(
    fc.property(
      codecContext,
      fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 10 }),
      fc.boolean(),
      (ctx, chunks, marker) => {
        const reader = new MessageReader();
        if (marker) reader.push(new Uint8Array(16).fill(0xff));
        for (const c of chunks) {
          reader.push(c);
          for (let i = 0; i < 4; i++) {
            const r = reader.next(ctx);
            if (!r) break;
            if (!r.ok) {
              assert.ok(r.error instanceof BgpError);
              break;
            }
          }
        }
      },
    ),
    { numRuns: RUNS },
  );
});

/** Splits an encoded UPDATE into its parts: withdrawn field, attributes (flags, code, value), NLRI. */
function splitUpdate(b: Uint8Array) {
  const wl = (b[19] << 8) | b[20];
  const withdrawn = b.slice(21, 21 + wl);
  const al = (b[21 + wl] << 8) | b[22 + wl];
  const attrs: Array<{ flags: number; code: number; value: Uint8Array }> = [];
  let p = 23 + wl;
  const end = p + al;
  while (p < end) {
    const ext = b[p] & 0x10;
    const len = ext ? (b[p + 2] << 8) | b[p + 3] : b[p + 2];
    const vs = p + (ext ? 4 : 3);
    attrs.push({ flags: b[p], code: b[p + 1], value: b.slice(vs, vs + len) });
    p = vs + len;
  }
  return { withdrawn, attrs, nlri: b.slice(end) };
}

function joinUpdate(parts: ReturnType<typeof splitUpdate>): Uint8Array {
  const body: number[] = [parts.withdrawn.length >> 8, parts.withdrawn.length & 255, ...parts.withdrawn];
  const a: number[] = [];
  for (const x of parts.attrs) {
    a.push(x.flags, x.code);
    if (x.flags & 0x10) a.push(x.value.length >> 8, x.value.length & 255);
    else a.push(x.value.length);
    a.push(...x.value);
  }
  body.push(a.length >> 8, a.length & 255, ...a, ...parts.nlri);
  const out = new Uint8Array(19 + body.length);
  out.fill(0xff, 0, 16);
  out[16] = out.length >> 8;
  out[17] = out.length & 255;
  out[18] = 2;
  out.set(body, 19);
  return out;
}

Deno.test("property: any attribute order and extended-length choice re-encodes byte-exact (layout)", () => {
  fc.assert(
    fc.property(
      ctxAndUpdate,
      fc.array(fc.nat(), { minLength: 20, maxLength: 20 }),
      fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }),
      ([ctx, m], order, ext) => {
        const parts = splitUpdate(encode(m, ctx));
        // Shuffle (a permutation from the random keys) and set extended length on some attributes.
        const keyed = parts.attrs.map((a, i) => ({ a, k: order[i % order.length] + i / 100 }));
        keyed.sort((x, y) => x.k - y.k);
        parts.attrs = keyed.map(({ a }, i) => ({
          ...a,
          flags: ext[i % ext.length] ? a.flags | 0x10 : a.flags,
        }));
        const wire = joinUpdate(parts);
        const r = decode(wire, ctx);
        assert.ok(r.ok, r.ok ? "" : r.error.message);
        assert.equal(r.errors, undefined);
        assert.deepStrictEqual(toHex(encode(r.msg, ctx)), toHex(wire));
        // Apart from the recorded layout, the message is the one we started from.
        // (unknown attributes are listed in wire order, so compare them sorted by code).
        const { layout: _layout, ...rest } = r.msg as UpdateMessage;
        if (rest.attrs.unknown) {
          rest.attrs = {
            ...rest.attrs,
            unknown: [...rest.attrs.unknown].sort((x, y) => x.code - y.code),
          };
        }
        assert.deepStrictEqual(rest, m);
      },
    ),
    { numRuns: RUNS },
  );
});

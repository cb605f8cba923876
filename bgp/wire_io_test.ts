// Unit tests of one connection's wire I/O (wire_io.ts) over a real loopback TCP connection:
// messages cut at arbitrary points arrive whole and in order, through a receive buffer that starts
// small and grows only under a stream; queued writes arrive in order.
import assert from "node:assert/strict";
import { encode } from "./codec/mod.ts";
import { AFI, defaultCodecContext, MessageType, type UpdateMessage } from "./codec/types.ts";
import { parsePrefix } from "./prefix.ts";
import type { BgpConn } from "./transport/mod.ts";
import { WireConn, type WireHandler } from "./wire_io.ts";

/** A connected pair of loopback sockets. */
async function pair(): Promise<{ a: Deno.TcpConn; b: Deno.TcpConn; close: () => void }> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [a, b] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port }),
    l.accept(),
  ]);
  l.close();
  return {
    a,
    b,
    close: () => {
      for (const c of [a, b]) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

const prefixes = Array.from({ length: 200 }, (_, k) => parsePrefix(`10.${k}.0.0/16`)!);

function update(i: number): Uint8Array {
  const u: UpdateMessage = {
    type: MessageType.Update,
    withdrawn: [],
    attrs: { origin: 0, asPath: [{ type: 2, asns: [65001, i] }], nextHop: "192.0.2.1" },
    nlri: prefixes.slice(0, 1 + (i % 200)),
  };
  return encode(u, { ...defaultCodecContext, fourOctetAs: true, families: [{ afi: AFI.IPv4, safi: 1 }] });
}

function handler(got: Uint8Array[], failed: string[]): WireHandler {
  return {
    message: (b) => got.push(b.slice()),
    headerError: (e) => failed.push(e.message),
    internalError: (e) => failed.push(String(e)),
    failed: (r) => failed.push(r),
    sliceDone: () => {},
  };
}

Deno.test("wire_io: 3,000 messages written in odd-sized pieces arrive whole and in order, then the close", async () => {
  const { a, b, close } = await pair();
  try {
    const msgs = Array.from({ length: 3000 }, (_, i) => update(i));
    const all = new Uint8Array(msgs.reduce((n, m) => n + m.length, 0));
    let o = 0;
    for (const m of msgs) all.set(m, o), o += m.length;
    const got: Uint8Array[] = [];
    const failed: string[] = [];
    const w = new WireConn(b as unknown as BgpConn, false, handler(got, failed));
    w.start();
    // Pieces of 1 to 70,000 octets, cutting headers and bodies anywhere.
    for (let off = 0, k = 1; off < all.length; k = (k * 7919) % 70_001 || 1) {
      const end = Math.min(all.length, off + k);
      for (let p = off; p < end;) p += await a.write(all.subarray(p, end));
      off = end;
    }
    a.close();
    for (let t = 0; t < 500 && !failed.length; t++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(failed, ["connection closed by peer"]);
    assert.equal(got.length, msgs.length);
    for (let i = 0; i < msgs.length; i++) assert.deepEqual(got[i], msgs[i], `message ${i}`);
  } finally {
    close();
  }
});

Deno.test("wire_io: sends are written in order; after close nothing more is queued or reported", async () => {
  const { a, b, close } = await pair();
  try {
    const failed: string[] = [];
    const w = new WireConn(a as unknown as BgpConn, true, handler([], failed));
    const msgs = Array.from({ length: 500 }, (_, i) => update(i));
    for (const m of msgs) assert.equal(w.send(m), true);
    const closed = w.close();
    assert.equal(w.attached, false);
    assert.equal(w.send(msgs[0]), false);
    const got: Uint8Array[] = [];
    const r = new WireConn(b as unknown as BgpConn, false, handler(got, []));
    r.start();
    await closed;
    for (let t = 0; t < 500 && got.length < msgs.length; t++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(got.length, msgs.length);
    for (let i = 0; i < msgs.length; i++) assert.deepEqual(got[i], msgs[i]);
    assert.deepEqual(failed, []);
    await r.close();
  } finally {
    close();
  }
});

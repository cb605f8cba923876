/**
 * A misbehaving BGP "peer" for the fault tests, run inside a lab namespace by
 * bgp_fault_test.ts: `deno run -A bgp_fault_peer.ts MODE HOST PORT`. It connects to our
 * speaker, misbehaves as MODE says, and prints JSON lines of what it saw (`{"event":...}`).
 *
 * Modes: garbage (random bytes, no marker) · badlength (header length 5000) · midclose (OPEN,
 * Established, half an UPDATE, close) · silent (OPEN with hold 3, then nothing) · badorigin (an
 * UPDATE with ORIGIN 7: RFC 7606 treat-as-withdraw, session stays up) · flood N (N prefixes as fast
 * as the socket takes them, then stay up).
 *
 * @module
 */

import {
  AsPathSegmentType,
  type BgpMessage,
  type CodecContext,
  decode,
  defaultCodecContext,
  encode,
  frame,
  MessageType,
  type Prefix,
} from "../../bgp/codec/mod.ts";

const [mode, host, portS, arg] = Deno.args;
const port = Number(portS);
const out = (o: Record<string, unknown>) => console.log(JSON.stringify(o));
const MY_AS = 65010;
const ctx: CodecContext = {
  fourOctetAs: true,
  extendedMessages: false,
  families: defaultCodecContext.families,
  ebgp: true,
};

const conn = await Deno.connect({ hostname: host, port });
out({ event: "connected" });

async function send(m: BgpMessage | Uint8Array): Promise<void> {
  const b = m instanceof Uint8Array ? m : encode(m, ctx);
  let off = 0;
  while (off < b.length) off += await conn.write(b.subarray(off));
}

let buf = new Uint8Array(0);
let closed = false;
const received: number[] = [];
/** Read messages in the background, printing NOTIFICATIONs and the close. */
const reader = (async () => {
  const chunk = new Uint8Array(65536);
  try {
    for (;;) {
      const n = await conn.read(chunk);
      if (n === null) break;
      const nb = new Uint8Array(buf.length + n);
      nb.set(buf);
      nb.set(chunk.subarray(0, n), buf.length);
      buf = nb;
      for (;;) {
        const f = frame(buf, defaultCodecContext);
        if (f.kind !== "message") break;
        const d = decode(buf.subarray(0, f.length), ctx);
        buf = buf.slice(f.length);
        if (!d.ok) continue;
        if (d.msg.type === MessageType.Notification) {
          out({ event: "notification", code: d.msg.code, subcode: d.msg.subcode, at: performance.now() });
        } else out({ event: "message", type: d.msg.type });
        received.push(d.msg.type);
      }
    }
  } catch (err) {
    out({ event: "read-error", error: String(err) });
  }
  closed = true;
  out({ event: "closed", at: performance.now() });
})();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(pred: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (pred()) return true;
    await sleep(20);
  }
  return pred();
}

function open(hold: number): BgpMessage {
  return {
    type: MessageType.Open,
    version: 4,
    myAs: MY_AS,
    holdTime: hold,
    routerId: "10.240.0.99",
    capabilities: [
      { code: 1, kind: "multiprotocol", afi: 1, safi: 1 },
      { code: 65, kind: "four-octet-as", asn: MY_AS },
    ],
  };
}

async function establish(hold: number): Promise<void> {
  await send(open(hold));
  await waitFor(() => received.includes(MessageType.Open), 5000);
  await send({ type: MessageType.Keepalive });
  await waitFor(() => received.includes(MessageType.Keepalive), 5000);
  out({ event: "established" });
}

function update(prefixes: Prefix[], origin = 0): BgpMessage {
  return {
    type: MessageType.Update,
    withdrawn: [],
    attrs: {
      origin: origin as 0,
      asPath: [{ type: AsPathSegmentType.AsSequence, asns: [MY_AS, 64999] }],
      nextHop: conn.localAddr.hostname,
      communities: [MY_AS * 65536 + 1],
    },
    nlri: prefixes,
  };
}

switch (mode) {
  case "garbage": {
    const g = crypto.getRandomValues(new Uint8Array(64));
    g[0] = 0x00;
    await send(g);
    break;
  }
  case "badlength": {
    await establish(30);
    const h = new Uint8Array(19).fill(0xff);
    h[16] = 5000 >> 8;
    h[17] = 5000 & 255;
    h[18] = MessageType.Update;
    await send(h);
    break;
  }
  case "midclose": {
    await establish(30);
    const u = encode(update([{ afi: 1, addr: "10.244.1.0", len: 24 }]), ctx);
    await send(u.subarray(0, Math.floor(u.length / 2)));
    await sleep(200);
    conn.close();
    out({ event: "we-closed" });
    Deno.exit(0);
    break;
  }
  case "silent": {
    await establish(3);
    // Answer nothing; our speaker's hold timer must expire.
    break;
  }
  case "badorigin": {
    await establish(30);
    await send(update([{ afi: 1, addr: "10.244.2.0", len: 24 }]));
    // Same prefix again with ORIGIN 7: RFC 7606 §7.1 says treat-as-withdraw.
    const bad = encode(update([{ afi: 1, addr: "10.244.2.0", len: 24 }], 0), ctx);
    // Patch the ORIGIN value octet (attribute 1 is encoded first: flags, type, len, value).
    const attrStart = 19 + 2 + 0 + 2;
    if (bad[attrStart + 1] !== 1) throw new Error("ORIGIN is not the first attribute");
    bad[attrStart + 3] = 7;
    await sleep(300);
    await send(bad);
    out({ event: "sent-bad-origin" });
    break;
  }
  case "flood": {
    const n = Number(arg ?? 100000);
    await establish(30);
    const t0 = performance.now();
    let batch: Uint8Array[] = [];
    let size = 0;
    for (let i = 0; i < n; i += 800) {
      const ps: Prefix[] = [];
      for (let j = i; j < Math.min(n, i + 800); j++) {
        ps.push({ afi: 1, addr: `10.${100 + (j >> 16)}.${(j >> 8) & 255}.${j & 255}`, len: 32 });
      }
      // 800 /32s do not fit one 4096-octet UPDATE: split in chunks of 700.
      for (let k = 0; k < ps.length; k += 700) {
        const b = encode(update(ps.slice(k, k + 700)), ctx);
        batch.push(b);
        size += b.length;
      }
      if (size > 1 << 20) {
        const all = new Uint8Array(size);
        let o = 0;
        for (const b of batch) {
          all.set(b, o);
          o += b.length;
        }
        await send(all);
        batch = [];
        size = 0;
      }
    }
    for (const b of batch) await send(b);
    out({ event: "flood-sent", prefixes: n, ms: Math.round(performance.now() - t0) });
    // Keep the session alive with keepalives until killed.
    while (!closed) {
      await send({ type: MessageType.Keepalive });
      await sleep(5000);
    }
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
await reader;

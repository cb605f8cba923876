/**
 * A raw BGP feeder for bench/bgp_fullfeed.ts and bench/router_fullfeed.ts, run inside a lab
 * namespace: `deno run -A bench/bgp_feeder.ts HOST MY_AS PEER_AS N K [BASE] [G]`. It connects to
 * HOST:179, brings the session up, pre-encodes N IPv4 /32s (10.BASE.0.0 upwards, BASE 200 by
 * default) under K attribute sets, prints `{"event":"ready"}`, and on a line "go" on stdin writes
 * them as fast as the receiver reads, then prints `{"event":"sent","ms":…}` and keeps the session
 * alive with KEEPALIVEs. Unlike a BIRD feed, the only thing that can slow it down is the
 * receiver.
 *
 * Churn: the prefixes of attribute set k form churn group k % G (G = 1 by default). A line
 * "w <g>" on stdin writes the withdrawal of group g, "a <g>" its announcement again (both
 * pre-encoded), each answered by `{"event":"wrote","op":…,"g":…}` once written.
 *
 * @module
 */

import {
  AsPathSegmentType,
  type BgpMessage,
  type CodecContext,
  encode,
  frame,
  MessageType,
  type Prefix,
} from "../bgp/codec/mod.ts";

const [host, myAsS, peerAsS, nS, kS, baseS, gS] = Deno.args;
const MY_AS = Number(myAsS), PEER_AS = Number(peerAsS), N = Number(nS), K = Number(kS);
const BASE = Number(baseS ?? 200), G = Math.max(1, Number(gS ?? 1));
const ctx: CodecContext = {
  fourOctetAs: true,
  extendedMessages: false,
  families: [{ afi: 1, safi: 1 }],
  ebgp: true,
};
const out = (o: Record<string, unknown>) => console.log(JSON.stringify(o));
const TRANSIT = [3356, 1299, 174, 2914, 6939, 6762, 3257, 6453, 701, 7018, 6461, 3491];

const conn = await Deno.connect({ hostname: host, port: 179 });
conn.setNoDelay(true);
const me = conn.localAddr.hostname;

async function send(b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await conn.write(b.subarray(off));
}

const seen: number[] = [];
let closed = false;
(async () => {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(chunk).catch(() => null);
    if (n === null) break;
    const nb = new Uint8Array(buf.length + n);
    nb.set(buf);
    nb.set(chunk.subarray(0, n), buf.length);
    buf = nb;
    for (;;) {
      const f = frame(buf, ctx);
      if (f.kind !== "message") break;
      seen.push(f.type);
      if (f.type === MessageType.Notification) {
        out({ event: "notification", code: buf[19], subcode: buf[20] });
      }
      buf = buf.slice(f.length);
    }
  }
  closed = true;
  out({ event: "closed" });
})();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(pred: () => boolean, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > end || closed) throw new Error("session did not come up");
    await sleep(10);
  }
}

const open: BgpMessage = {
  type: MessageType.Open,
  version: 4,
  myAs: MY_AS,
  holdTime: 240,
  routerId: me,
  capabilities: [
    { code: 1, kind: "multiprotocol", afi: 1, safi: 1 },
    { code: 2, kind: "route-refresh" },
    { code: 65, kind: "four-octet-as", asn: MY_AS },
  ],
};
await send(encode(open, ctx));
await until(() => seen.includes(MessageType.Open), 10_000);
await send(encode({ type: MessageType.Keepalive }, ctx));
await until(() => seen.includes(MessageType.Keepalive), 10_000);

// Pre-encode: prefix i belongs to attribute set i % K (as the BIRD feed does).
const groups: Prefix[][] = Array.from({ length: K }, () => []);
for (let i = 0; i < N; i++) {
  groups[i % K].push({ afi: 1, addr: `10.${BASE + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, len: 32 });
}
const parts: Uint8Array[] = [];
/** Churn group g's announcement and withdrawal messages. */
const announce: Uint8Array[][] = Array.from({ length: G }, () => []);
const withdraw: Uint8Array[][] = Array.from({ length: G }, () => []);
let total = 0;
for (let k = 0; k < K; k++) {
  const len = 1 + (k % 5);
  const path = [MY_AS];
  for (let h = 0; h < len; h++) path.push(TRANSIT[(k * 7 + h * 3) % TRANSIT.length]);
  // The origin AS, never the receiver's own (its loop check would drop the set).
  const origin = 64512 + (k % 400);
  path.push(origin === PEER_AS ? 64912 : origin);
  const attrs = {
    origin: 0 as const,
    asPath: [{ type: AsPathSegmentType.AsSequence, asns: path }],
    nextHop: me,
    communities: [path[path.length - 1] * 65536 + (k % 1000), 65000 * 65536 + (k % 50)],
    largeCommunities: [{ global: 65000, local1: k, local2: 1 }],
  };
  const ps = groups[k];
  for (let i = 0; i < ps.length; i += 780) {
    const b = encode({ type: MessageType.Update, withdrawn: [], attrs, nlri: ps.slice(i, i + 780) }, ctx);
    parts.push(b);
    announce[k % G].push(b);
    total += b.length;
  }
  if (G > 1) {
    for (let i = 0; i < ps.length; i += 800) {
      withdraw[k % G].push(
        encode({ type: MessageType.Update, withdrawn: ps.slice(i, i + 800), attrs: {}, nlri: [] }, ctx),
      );
    }
  }
}
const stream = new Uint8Array(total);
let o = 0;
for (const p of parts) {
  stream.set(p, o);
  o += p.length;
}
out({ event: "ready", messages: parts.length, bytes: total });

const stdin = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
let pending = "";
/** The next line on stdin, or null at its end. */
async function line(): Promise<string | null> {
  for (;;) {
    const nl = pending.indexOf("\n");
    if (nl >= 0) {
      const l = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      return l;
    }
    const { value, done } = await stdin.read();
    if (done) return null;
    pending += value;
  }
}
for (;;) {
  const l = await line();
  if (l === null) Deno.exit(0);
  if (l === "go") break;
}
const t0 = performance.now();
for (let off = 0; off < stream.length; off += 1 << 20) {
  await send(stream.subarray(off, Math.min(stream.length, off + (1 << 20))));
}
out({ event: "sent", ms: Math.round(performance.now() - t0) });
// KEEPALIVEs go between churn writes, never inside one (one writer at a time).
let writing: Promise<void> = Promise.resolve();
const serial = (f: () => Promise<void>) => writing = writing.then(f);
const keepalive = setInterval(() => {
  if (!closed) void serial(() => send(encode({ type: MessageType.Keepalive }, ctx)));
}, 10_000);
for (;;) {
  const l = await line();
  if (l === null || closed) break;
  const [op, gs] = l.split(" ");
  const g = Number(gs);
  const msgs = op === "w" ? withdraw[g] : op === "a" ? announce[g] : undefined;
  if (!msgs || !(g >= 0 && g < G)) continue;
  await serial(async () => {
    for (const m of msgs) await send(m);
  });
  out({ event: "wrote", op, g });
}
clearInterval(keepalive);
await writing;
Deno.exit(0);

/**
 * BGP codec benchmark: decodes and encodes a realistic 100k-prefix IPv4 UPDATE stream (AS paths
 * of 2-7 ASNs with 4-octet ASNs, communities, some large communities and MEDs; a few thousand
 * distinct attribute sets) in two shapes: "packed" (each attribute set's prefixes in as few
 * UPDATEs as fit, as BIRD sends a table) and "one prefix per UPDATE" (the worst case, where the
 * attribute cache matters most). Prints prefixes/second and ratios against references measured
 * in the same run: framing only (the floor: walk the headers) and JSON.parse of the same routes.
 *
 *   deno run -A bench/bgp_codec.ts [prefixes=100000]
 */

import {
  AttributeCache,
  type CodecContext,
  decode,
  encode,
  frame,
  type PathAttributes,
  type Prefix,
  type UpdateMessage,
} from "../bgp/codec/mod.ts";

const N = Number(Deno.args[0] ?? 100_000);
const ctx: CodecContext = {
  fourOctetAs: true,
  extendedMessages: false,
  families: [{ afi: 1, safi: 1 }],
  ebgp: true,
};

// Deterministic pseudo-random numbers (xorshift32).
let seed = 0x9e3779b9;
const rnd = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};
const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)];

const upstreams = [64496, 64497, 4200000010, 4200000011, 65010, 174, 3356, 1299, 2914, 6939];
function attrSet(): PathAttributes {
  const len = 2 + Math.floor(rnd() * 6);
  const asns = [pick(upstreams)];
  for (let i = 1; i < len; i++) {
    asns.push(rnd() < 0.3 ? 4200000000 + Math.floor(rnd() * 100000) : 1 + Math.floor(rnd() * 64000));
  }
  const a: PathAttributes = {
    origin: rnd() < 0.9 ? 0 : 2,
    asPath: [{ type: 2, asns }],
    nextHop: "10.231.0.2",
  };
  const nc = Math.floor(rnd() * 5);
  if (nc) {
    a.communities = Array.from({ length: nc }, () => (asns[0] & 0xffff) * 65536 + Math.floor(rnd() * 1000));
  }
  if (rnd() < 0.3) {
    a.largeCommunities = [{
      global: asns[0],
      local1: Math.floor(rnd() * 100),
      local2: Math.floor(rnd() * 100),
    }];
  }
  if (rnd() < 0.5) a.med = Math.floor(rnd() * 1000);
  return a;
}

const sets = Array.from({ length: Math.max(1, Math.floor(N / 30)) }, attrSet);
// Distinct prefixes from 11.0.0.0 upwards: mostly /24s, some /22s and /20s.
const prefixes: Prefix[] = [];
for (let v = 0x0b000000; prefixes.length < N;) {
  const len = rnd() < 0.85 ? 24 : rnd() < 0.7 ? 22 : 20;
  v = (v + (1 << (32 - len)) - 1) & ~((1 << (32 - len)) - 1); // align
  prefixes.push({ afi: 1, addr: `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.0`, len });
  v = (v + (1 << (32 - len))) >>> 0;
}
// Assign prefixes to attribute sets with a skew (a few sets carry many prefixes).
const bySet = new Map<number, Prefix[]>();
for (const p of prefixes) {
  const s = Math.floor(sets.length * rnd() ** 2);
  (bySet.get(s) ?? bySet.set(s, []).get(s)!).push(p);
}

function packed(): UpdateMessage[] {
  const out: UpdateMessage[] = [];
  for (const [s, ps] of bySet) {
    // 4096 octets minus header and attributes leave room for about 900 /24s per UPDATE.
    for (let i = 0; i < ps.length; i += 800) {
      out.push({ type: 2, withdrawn: [], attrs: sets[s], nlri: ps.slice(i, i + 800) });
    }
  }
  return out;
}

function single(): UpdateMessage[] {
  const out: UpdateMessage[] = [];
  for (const [s, ps] of bySet) {
    for (const p of ps) out.push({ type: 2, withdrawn: [], attrs: sets[s], nlri: [p] });
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return all;
}

function time(fn: () => number, reps = 3): { ms: number; n: number } {
  fn(); // warm up
  let best = Infinity;
  let n = 0;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    n = fn();
    best = Math.min(best, performance.now() - t);
  }
  return { ms: best, n };
}

function decodeStream(stream: Uint8Array, cache?: AttributeCache): number {
  let off = 0;
  let count = 0;
  const opts = cache ? { attrCache: cache } : {};
  while (off < stream.length) {
    const r = decode(stream.subarray(off), ctx, opts);
    if (!r.ok) throw new Error(r.error.message);
    const m = r.msg as UpdateMessage;
    count += m.nlri.length;
    off += r.length;
  }
  return count;
}

function frameStream(stream: Uint8Array): number {
  let off = 0;
  let n = 0;
  while (off < stream.length) {
    const f = frame(stream.subarray(off), ctx);
    if (f.kind !== "message") throw new Error("bad stream");
    off += f.length;
    n++;
  }
  return n;
}

const rate = (n: number, ms: number) => `${(n / (ms / 1000) / 1e6).toFixed(2)} M prefixes/s`;

for (const [shape, build] of [["packed", packed], ["one prefix per UPDATE", single]] as const) {
  // Built per shape so the other shape's messages do not weigh on the garbage collector here.
  const msgs = build();
  const enc = time(() => {
    let n = 0;
    for (const m of msgs) n += encode(m, ctx).length;
    return n;
  });
  // As the speaker sends: attribute sets interned (frozen) by the RIB, so each encodes once.
  const frozen = new Map<PathAttributes, PathAttributes>();
  const interned = msgs.map((m) => {
    let a = frozen.get(m.attrs);
    if (!a) frozen.set(m.attrs, a = Object.freeze({ ...m.attrs }));
    return { ...m, attrs: a };
  });
  const encF = time(() => {
    let n = 0;
    for (const m of interned) n += encode(m, ctx).length;
    return n;
  });
  const stream = concat(msgs.map((m) => encode(m, ctx)));
  const json = JSON.stringify(msgs);
  const fr = time(() => frameStream(stream));
  const dec = time(() => decodeStream(stream));
  const cache = new AttributeCache();
  const decC = time(() => decodeStream(stream, cache));
  const js = time(() => (JSON.parse(json) as unknown[]).length);
  console.log(
    `\n${shape}: ${msgs.length} UPDATEs, ${N} prefixes, ${sets.length} attribute sets, ${
      (stream.length / 1e6).toFixed(2)
    } MB`,
  );
  console.log(`  encode              ${enc.ms.toFixed(1).padStart(8)} ms  ${rate(N, enc.ms)}`);
  console.log(`  encode (interned)   ${encF.ms.toFixed(1).padStart(8)} ms  ${rate(N, encF.ms)}`);
  console.log(`  decode (no cache)   ${dec.ms.toFixed(1).padStart(8)} ms  ${rate(N, dec.ms)}`);
  console.log(
    `  decode (attr cache) ${decC.ms.toFixed(1).padStart(8)} ms  ${
      rate(N, decC.ms)
    }  (cache hits ${cache.hits}, misses ${cache.misses})`,
  );
  console.log(
    `  reference: framing only ${fr.ms.toFixed(1)} ms; JSON.parse of the same messages ${
      js.ms.toFixed(1)
    } ms`,
  );
  console.log(
    `  ratios: decode/framing ${(dec.ms / fr.ms).toFixed(1)}x, decode/JSON.parse ${
      (dec.ms / js.ms).toFixed(2)
    }x, ` +
      `cached decode/JSON.parse ${(decC.ms / js.ms).toFixed(2)}x, encode/JSON.stringify ${
        (enc.ms / time(() => JSON.stringify(msgs).length).ms).toFixed(2)
      }x`,
  );
}

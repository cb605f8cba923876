/**
 * Writes route changes (replace / delete of routes of our protocol 17) to the kernel in bulk.
 *
 * Through the runner's NETLINK_ROUTE channel when it has one (`Runner.netlink`, kernel/netlink.ts):
 * RTM_NEWROUTE / RTM_DELROUTE messages, `CHUNK` per `sendto`, one acknowledgement per chunk (failures
 * are answered on their own); each send runs off the JS thread while the next chunk is encoded and
 * the event loop runs. Otherwise (dry-run, recording wrappers, no FFI permission) as one
 * `ip -force -batch -` through `runner.run`, so `--dry-run` prints exactly these changes.
 *
 * Each route succeeds or fails on its own (a bad next hop never stops the rest); deleting a route
 * that is already gone counts as done. Deletions match our protocol only, so a foreign route with
 * the same prefix is never hit (the kernel compares `rtm_protocol` on delete).
 *
 * @module
 */
import { parseIPv4, parseIPv6Into } from "../../net/ip.ts";
import type { Runner } from "../exec.ts";
import type { NetlinkChannel } from "../netlink.ts";
import { renderRouteDel, renderRouteReplace, type Route, ROUTE_PROTO } from "./route.ts";

/** One change: replace (add or overwrite) or delete a route of ours. */
export interface RouteOp {
  del: boolean;
  route: Route;
}

export interface RouteWriteResult {
  /** Ops the kernel accepted (deletes of absent routes included). */
  done: number;
  /** Ops it refused, with its reason. */
  failed: Array<{ op: RouteOp; error: string }>;
  via: "netlink" | "ip-batch";
}

/** Routes per `sendto`: ~60 KB of requests, ~18 KB of acknowledgements; a few ms of kernel time. */
export const CHUNK = 512;

const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_GETLINK = 18;
const NLM_F_REQUEST = 1;
const NLM_F_ACK = 4;
const NLM_F_REPLACE = 0x100;
const NLM_F_CREATE = 0x400;
const AF_INET = 2;
const AF_INET6 = 10;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PREFSRC = 7;
const RTA_MULTIPATH = 9;
const RTA_TABLE = 15;
const RTA_VIA = 18;
const IFLA_IFNAME = 3;
const RTN_UNICAST = 1;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_NOWHERE = 255;
const RTNH_F_ONLINK = 4;
// No NLM_F_ACK: the kernel answers a request without it only when it fails. The last request
// of a chunk asks for one (`Encoder.ackLast`): its answer closes the chunk, since rtnetlink
// handles a send's messages in order. One answer to read per chunk instead of one per route
// (each answer is a datagram of its own: one `recv` each).
const REQ_NEW = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
const REQ_DEL = NLM_F_REQUEST;
const ESRCH = 3;
const ENOENT = 2;

/** Bytes of the address `s` into `out` at `off`; its family, or 0 when `s` is no address. */
function putAddr(s: string, out: Uint8Array, off: number): 4 | 6 | 0 {
  if (s.indexOf(":") >= 0) return parseIPv6Into(s, out, off) ? 6 : 0;
  const n = parseIPv4(s);
  if (n < 0) return 0;
  out[off] = n >>> 24;
  out[off + 1] = (n >>> 16) & 255;
  out[off + 2] = (n >>> 8) & 255;
  out[off + 3] = n & 255;
  return 4;
}

/** Encodes netlink messages into one growing buffer. */
class Encoder {
  buf = new Uint8Array(CHUNK * 160);
  view = new DataView(this.buf.buffer);
  len = 0;
  count = 0;
  #msg = 0;
  /** Offset of the last complete message. */
  #last = -1;

  #room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.len + n + 64));
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
    this.view = new DataView(b.buffer);
  }

  begin(type: number, flags: number, seq: number): void {
    this.#room(16);
    this.#msg = this.len;
    this.view.setUint16(this.len + 4, type, true);
    this.view.setUint16(this.len + 6, flags, true);
    this.view.setUint32(this.len + 8, seq, true);
    this.len += 16;
  }

  /** Reserves `n` bytes (padded to 4), zero: the buffer is kept zeroed past `len` (see `reset`). */
  bytes(n: number): number {
    this.#room(n + 3);
    const at = this.len;
    this.len += (n + 3) & ~3;
    return at;
  }

  /** Starts an attribute; returns its offset (for `endAttr`). */
  attr(type: number): number {
    const at = this.bytes(4);
    this.view.setUint16(at + 2, type, true);
    return at;
  }

  endAttr(at: number): void {
    this.view.setUint16(at, this.len - at, true);
  }

  addrAttr(type: number, addr: string): 4 | 6 | 0 {
    const at = this.attr(type);
    const p = this.bytes(16);
    const fam = putAddr(addr, this.buf, p);
    this.len = p + (fam === 6 ? 16 : 4);
    this.endAttr(at);
    return fam;
  }

  u32Attr(type: number, v: number): void {
    const at = this.attr(type);
    const p = this.bytes(4);
    this.view.setUint32(p, v, true);
    this.endAttr(at);
  }

  end(): void {
    this.view.setUint32(this.#msg, this.len - this.#msg, true);
    this.#last = this.#msg;
    this.count++;
  }

  /** Asks for an acknowledgement of the last complete message. */
  ackLast(): void {
    if (this.#last < 0) return;
    const at = this.#last + 6;
    this.view.setUint16(at, this.view.getUint16(at, true) | NLM_F_ACK, true);
  }

  /** Back to empty; zeroes what was used, so `bytes` hands out zeroed space without a fill each. */
  reset(): void {
    this.buf.fill(0, 0, this.len + 32);
    this.len = 0;
    this.count = 0;
    this.#last = -1;
  }

  message(): Uint8Array<ArrayBuffer> {
    return this.buf.subarray(0, this.len) as Uint8Array<ArrayBuffer>;
  }
}

/** RTA_GATEWAY, or RTA_VIA for a next hop of the other family (RFC 5549); false when `via` is no address. */
function putGateway(e: Encoder, via: string, v6: boolean): boolean {
  if ((via.indexOf(":") >= 0) === v6) return e.addrAttr(RTA_GATEWAY, via) !== 0;
  const at = e.attr(RTA_VIA);
  const p = e.bytes(18);
  const fam = putAddr(via, e.buf, p + 2);
  if (!fam) return false;
  e.view.setUint16(p, fam === 6 ? AF_INET6 : AF_INET, true);
  e.len = p + ((2 + (fam === 6 ? 16 : 4) + 3) & ~3);
  e.view.setUint16(at, 4 + 2 + (fam === 6 ? 16 : 4), true);
  return true;
}

/** Drops a half-encoded message (zeroing it again) and returns `msg`. */
function rollback(e: Encoder, start: number, count: number, msg: string): string {
  e.buf.fill(0, start, e.len + 32);
  e.len = start;
  e.count = count;
  return msg;
}

/**
 * Appends one route request to `e`. Returns an error text instead when the route cannot be
 * expressed (bad address, unknown device) so the caller fails that op alone.
 */
export function encodeRouteOp(
  e: Encoder,
  op: RouteOp,
  seq: number,
  ifindex: (dev: string) => number,
): string | null {
  const r = op.route;
  const dst = r.dst;
  const slash = dst.indexOf("/");
  const dstAddr = slash < 0 ? dst : dst.slice(0, slash);
  const v6 = dstAddr.indexOf(":") >= 0;
  const plen = slash < 0 ? (v6 ? 128 : 32) : +dst.slice(slash + 1);
  if (!(plen >= 0 && plen <= (v6 ? 128 : 32)) || plen !== Math.floor(plen)) return `bad prefix ${dst}`;
  const table = r.table ?? 254;
  const start = e.len, startCount = e.count;
  const del = op.del;
  e.begin(del ? RTM_DELROUTE : RTM_NEWROUTE, del ? REQ_DEL : REQ_NEW, seq);
  const rt = e.bytes(12);
  const b = e.buf;
  b[rt] = v6 ? AF_INET6 : AF_INET;
  b[rt + 1] = plen;
  b[rt + 4] = table < 256 ? table : 0;
  b[rt + 5] = ROUTE_PROTO;
  if (del) b[rt + 6] = RT_SCOPE_NOWHERE;
  else {
    const hasGw = r.via !== undefined || (r.nexthops !== undefined && r.nexthops.length > 0);
    b[rt + 6] = hasGw || v6 ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    b[rt + 7] = RTN_UNICAST;
    if (r.onlink) e.view.setUint32(rt + 8, RTNH_F_ONLINK, true);
  }
  if (e.addrAttr(RTA_DST, dstAddr) !== (v6 ? 6 : 4)) {
    return rollback(e, start, startCount, `bad prefix ${dst}`);
  }
  if (table >= 256) e.u32Attr(RTA_TABLE, table);
  if (!del) {
    if (r.nexthops && r.nexthops.length > 0) {
      const mp = e.attr(RTA_MULTIPATH);
      for (const h of r.nexthops) {
        const nh = e.bytes(8);
        e.buf[nh + 2] = h.onlink ? RTNH_F_ONLINK : 0;
        if (h.dev) {
          const i = ifindex(h.dev);
          if (i <= 0) return rollback(e, start, startCount, `device ${h.dev} not found`);
          e.view.setInt32(nh + 4, i, true);
        }
        if (!putGateway(e, h.via, v6)) return rollback(e, start, startCount, `bad next hop ${h.via}`);
        e.view.setUint16(nh, e.len - nh, true);
      }
      e.endAttr(mp);
    } else if (r.via !== undefined && !putGateway(e, r.via, v6)) {
      return rollback(e, start, startCount, `bad next hop ${r.via}`);
    }
    if (r.dev) {
      const i = ifindex(r.dev);
      if (i <= 0) return rollback(e, start, startCount, `device ${r.dev} not found`);
      e.u32Attr(RTA_OIF, i);
    }
    if (r.src && !e.addrAttr(RTA_PREFSRC, r.src)) {
      return rollback(e, start, startCount, `bad source ${r.src}`);
    }
  }
  e.end();
  return null;
}

/** Resolves interface names in the channel's namespace (RTM_GETLINK by IFLA_IFNAME). */
function resolveDevices(ch: NetlinkChannel, names: ReadonlySet<string>, seq: number): Map<string, number> {
  const out = new Map<string, number>();
  if (names.size === 0) return out;
  const list = [...names];
  const e = new Encoder();
  list.forEach((name, i) => {
    e.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq + i);
    e.bytes(16); // ifinfomsg
    const at = e.attr(IFLA_IFNAME);
    const b = new TextEncoder().encode(name);
    const p = e.bytes(b.length + 1);
    e.buf.set(b, p);
    e.len = p + ((b.length + 1 + 3) & ~3);
    e.view.setUint16(at, 4 + b.length + 1, true);
    e.end();
  });
  ch.transact(e.message(), list.length, seq, (s, msg) => {
    if (msg.getUint16(4, true) === 16 /* RTM_NEWLINK */) out.set(list[s - seq], msg.getInt32(20, true));
  });
  return out;
}

let seqBase = 1;

/** Writes on one channel run one after another: a channel has one stream of acknowledgements. */
const queues = new WeakMap<NetlinkChannel, Promise<unknown>>();

/**
 * Applies `ops` in order (callers put deletions of moved prefixes before their replacements).
 * Never throws for a refused route: see `failed`. Throws only when the channel itself breaks.
 */
export function writeRoutes(runner: Runner, ops: readonly RouteOp[]): Promise<RouteWriteResult> {
  if (ops.length === 0) {
    return Promise.resolve({ done: 0, failed: [], via: runner.netlink ? "netlink" : "ip-batch" });
  }
  if (!runner.netlink) return writeRoutesBatch(runner, ops);
  const ch = runner.netlink();
  const run = (queues.get(ch) ?? Promise.resolve()).then(() => writeRoutesNetlink(ch, ops));
  queues.set(ch, run.catch(() => {}));
  return run;
}

/**
 * Chunk by chunk, two encoders taking turns: while the kernel installs one chunk (its send runs
 * off the JS thread) the next is encoded and the event loop runs (the speaker reads its sockets).
 */
async function writeRoutesNetlink(ch: NetlinkChannel, ops: readonly RouteOp[]): Promise<RouteWriteResult> {
  const devs = new Set<string>();
  for (const op of ops) {
    if (op.del) continue;
    if (op.route.dev) devs.add(op.route.dev);
    for (const h of op.route.nexthops ?? []) if (h.dev) devs.add(h.dev);
  }
  const index = resolveDevices(ch, devs, seqBase);
  seqBase = (seqBase + devs.size) >>> 0 || 1;
  const ifindex = (d: string) => index.get(d) ?? 0;
  const failed: RouteWriteResult["failed"] = [];
  let done = 0;
  const enc = [new Encoder(), new Encoder()];
  const chunks: RouteOp[][] = [[], []];
  let i = 0;
  /** Encodes the next chunk into encoder `b`; returns its first sequence number. */
  const encode = (b: number): number => {
    const e = enc[b], inChunk = chunks[b];
    e.reset();
    inChunk.length = 0;
    const first = seqBase;
    for (; i < ops.length && inChunk.length < CHUNK; i++) {
      const err = encodeRouteOp(e, ops[i], first + inChunk.length, ifindex);
      if (err) failed.push({ op: ops[i], error: err });
      else inChunk.push(ops[i]);
    }
    e.ackLast();
    seqBase = (seqBase + inChunk.length) >>> 0 || 1;
    return first;
  };
  // A chunk is empty only when the ops ran out (refused ops do not fill one).
  let b = 0, first = encode(0);
  while (chunks[b].length > 0) {
    const inChunk = chunks[b];
    const sent = ch.transactOffThread(enc[b].message(), inChunk.length, first);
    const nextFirst = i < ops.length ? encode(1 - b) : 0;
    const errs = await sent;
    for (let j = 0; j < inChunk.length; j++) {
      const code = errs[j];
      if (code === 0 || (inChunk[j].del && (code === ESRCH || code === ENOENT))) done++;
      else failed.push({ op: inChunk[j], error: `kernel answered errno ${code}` });
    }
    inChunk.length = 0;
    b = 1 - b;
    first = nextFirst;
  }
  return { done, failed, via: "netlink" };
}

/** The same through `ip -force -batch -` (one process; each failing line reported on stderr). */
async function writeRoutesBatch(runner: Runner, ops: readonly RouteOp[]): Promise<RouteWriteResult> {
  const lines: string[] = new Array(ops.length);
  for (let i = 0; i < ops.length; i++) {
    lines[i] = ops[i].del ? renderRouteDel(ops[i].route) : renderRouteReplace(ops[i].route);
  }
  const res = await runner.run(["ip", "-force", "-batch", "-"], {
    stdin: lines.join("\n") + "\n",
    okCodes: [0, 1],
  });
  const failed: RouteWriteResult["failed"] = [];
  let prev = "";
  for (const l of res.stderr.split("\n")) {
    const m = /^Command failed -:(\d+)/.exec(l);
    if (m) {
      const op = ops[Number(m[1]) - 1];
      if (op && !(op.del && /No such process|No such file/.test(prev))) {
        failed.push({ op, error: prev.trim() || "failed" });
      }
    }
    prev = l;
  }
  return { done: ops.length - failed.length, failed, via: "ip-batch" };
}

export { Encoder as RouteMessageEncoder };

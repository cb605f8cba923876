/**
 * Runs our transport inside a test namespace (started by bgp_md5_lab.ts through
 * `ip netns exec`): opens a BGP session with a hand-encoded OPEN (4-octet AS and IPv4/IPv6
 * unicast capabilities) and KEEPALIVEs, so the transport can be proven against real daemons
 * independently of the speaker. Prints one JSON event per line on stdout:
 * listening, connected, accepted, open, established, notification, closed, error.
 * stdin commands: `setpw <peer> <password|->` (listener), `ttl`; EOF ends the process.
 *
 * Usage: deno run --allow-ffi --allow-net bgp_md5_agent.ts '{"mode":"connect","host":...}'
 *
 * @module
 */
import {
  type BgpConn,
  type BgpListener,
  connectTcp,
  FfiConn,
  listenTcp,
  writeAll,
} from "../../bgp/transport/mod.ts";
import { C } from "../../bgp/transport/libc.ts";

interface Opts {
  mode: "connect" | "listen";
  host: string;
  port?: number;
  password?: string;
  passwords?: Record<string, string>;
  localAddress?: string;
  ttl?: number;
  minTtl?: number;
  asn: number;
  routerId: string;
  holdTime?: number;
  connectTimeoutMs?: number;
}

const o: Opts = JSON.parse(Deno.args[0]);
const emit = (event: string, f: Record<string, unknown> = {}) => console.log(JSON.stringify({ event, ...f }));

function header(type: number, bodyLen: number): Uint8Array {
  const h = new Uint8Array(19).fill(0xff);
  new DataView(h.buffer).setUint16(16, 19 + bodyLen);
  h[18] = type;
  return h;
}

function encodeOpen(asn: number, hold: number, routerId: string, v6: boolean): Uint8Array {
  const caps: number[] = [
    ...[1, 4, 0, 1, 0, 1], // MP IPv4 unicast
    ...(v6 ? [1, 4, 0, 2, 0, 1] : []), // MP IPv6 unicast
    65,
    4,
    (asn >>> 24) & 0xff,
    (asn >>> 16) & 0xff,
    (asn >>> 8) & 0xff,
    asn & 0xff,
  ];
  const params = [2, caps.length, ...caps];
  const body = [
    4,
    asn > 0xffff ? 0x5b : (asn >> 8) & 0xff,
    asn > 0xffff ? 0xa0 : asn & 0xff,
    (hold >> 8) & 0xff,
    hold & 0xff,
    ...routerId.split(".").map(Number),
    params.length,
    ...params,
  ];
  const h = header(1, body.length);
  const out = new Uint8Array(19 + body.length);
  out.set(h);
  out.set(body, 19);
  return out;
}

const KEEPALIVE = header(4, 0);

async function readMsg(c: BgpConn, buf: { data: Uint8Array; len: number }): Promise<Uint8Array | null> {
  for (;;) {
    if (buf.len >= 19) {
      const len = (buf.data[16] << 8) | buf.data[17];
      if (buf.len >= len) {
        const msg = buf.data.slice(0, len);
        buf.data.copyWithin(0, len, buf.len);
        buf.len -= len;
        return msg;
      }
    }
    const n = await c.read(buf.data.subarray(buf.len));
    if (n === null) return null;
    buf.len += n;
  }
}

function ttlOf(c: BgpConn): number | undefined {
  if (!(c instanceof FfiConn)) return undefined;
  return c.remoteAddr.hostname.includes(":")
    ? c.getIntOption(C.IPPROTO_IPV6, C.IPV6_UNICAST_HOPS)
    : c.getIntOption(C.IPPROTO_IP, C.IP_TTL);
}

async function session(c: BgpConn): Promise<void> {
  const hold = o.holdTime ?? 30;
  const v6 = c.remoteAddr.hostname.includes(":");
  await writeAll(c, encodeOpen(o.asn, hold, o.routerId, v6));
  const buf = { data: new Uint8Array(65536), len: 0 };
  let gotOpen = false, established = false;
  const ka = setInterval(() => {
    if (gotOpen) writeAll(c, KEEPALIVE).catch(() => {});
  }, Math.max(1, Math.floor(hold / 3)) * 1000);
  try {
    for (;;) {
      const m = await readMsg(c, buf);
      if (m === null) {
        emit("closed", { peer: c.remoteAddr.hostname });
        return;
      }
      const type = m[18];
      if (type === 1) {
        gotOpen = true;
        const peerAs = (m[20] << 8) | m[21];
        emit("open", { peer: c.remoteAddr.hostname, peerAs, length: m.length });
        await writeAll(c, KEEPALIVE);
      } else if (type === 4 && gotOpen && !established) {
        established = true;
        emit("established", {
          peer: c.remoteAddr.hostname,
          local: c.localAddr,
          remote: c.remoteAddr,
          ttl: ttlOf(c),
        });
      } else if (type === 3) {
        emit("notification", { code: m[19], subcode: m[20] });
      } else if (type === 2) {
        emit("update", { length: m.length });
      }
    }
  } catch (err) {
    emit("error", { message: String(err), code: (err as { code?: string }).code });
  } finally {
    clearInterval(ka);
    c.close();
  }
}

let listener: BgpListener | undefined;
const conns = new Set<BgpConn>();

async function commands(): Promise<void> {
  const dec = new TextDecoderStream();
  let buf = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(dec)) {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const [cmd, ...args] = buf.slice(0, nl).trim().split(" ");
      buf = buf.slice(nl + 1);
      try {
        if (cmd === "setpw" && listener) {
          listener.setPassword(args[0], args[1] === "-" ? null : args[1]);
          emit("setpw", { peer: args[0] });
        }
      } catch (err) {
        emit("error", { message: String(err) });
      }
    }
  }
}

const done = commands().then(() => {
  listener?.close();
  for (const c of conns) c.close();
});

try {
  if (o.mode === "listen") {
    listener = listenTcp({
      hostname: o.host,
      port: o.port ?? 179,
      passwords: o.passwords,
      ttl: o.ttl,
      minTtl: o.minTtl,
      kind: "ffi",
    });
    emit("listening", { addr: listener.addr });
    for await (const c of listener) {
      conns.add(c);
      emit("accepted", { remote: c.remoteAddr, ttl: ttlOf(c) });
      session(c).finally(() => conns.delete(c));
    }
  } else {
    const c = await connectTcp({
      hostname: o.host,
      port: o.port ?? 179,
      password: o.password,
      localAddress: o.localAddress,
      ttl: o.ttl,
      minTtl: o.minTtl,
      signal: AbortSignal.timeout(o.connectTimeoutMs ?? 10000),
    });
    conns.add(c);
    emit("connected", { local: c.localAddr, remote: c.remoteAddr, ttl: ttlOf(c) });
    await session(c);
  }
} catch (err) {
  emit("error", { message: String(err), name: (err as Error).name, code: (err as { code?: string }).code });
}
await done;

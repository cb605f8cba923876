/**
 * BGP peer simulator for bench/bgp_many_peers.ts (needs --unstable-net: SO_REUSEPORT listeners),
 * run inside a lab namespace holding many addresses: `deno run -A --unstable-net
 * bench/bgp_peer_sim.ts ASN PORT [ANNOUNCE]`. It listens on 0.0.0.0:PORT; every session the
 * route reflector opens to one of the namespace's addresses is one simulated client (router id =
 * that address), which answers OPEN/KEEPALIVE, keeps the session alive, announces one /24
 * (10.(100 + i / 256).(i % 256).0/24 for address index i) once Established, and counts the
 * prefixes reflected to it. Every 200 ms it prints one JSON line: `established`, `received`, and
 * how many sessions passed each stage (`accepted`, `openSent`, `openReceived`), so a run shows
 * where sessions wait (the reflector, or the simulator itself).
 *
 * Minimal on purpose (no FSM beyond what a session needs, no policy); uses our codec to encode
 * its few messages. Received UPDATEs are counted, not decoded: the NLRI and withdrawn fields are
 * walked by their length octets, so a million reflected UPDATEs cost the simulator little CPU
 * and it does not compete with the reflector it measures.
 *
 * @module
 */
import { type BgpMessage, type CodecContext, encode, MessageType } from "../bgp/codec/mod.ts";

const MY_AS = Number(Deno.args[0] ?? 64512);
const PORT = Number(Deno.args[1] ?? 179);
/** Whether each client announces its /24 (0: sessions only). */
const ANNOUNCE = (Deno.args[2] ?? "1") !== "0";
const ctx: CodecContext = {
  fourOctetAs: true,
  extendedMessages: false,
  families: [{ afi: 1, safi: 1 }],
  ebgp: false,
};
const KEEPALIVE = encode({ type: MessageType.Keepalive }, ctx);
/** Up sessions per client address: `established` counts addresses, not connections (a reflector
 * that dials again while its first connection lives would otherwise be counted twice). */
const upByClient = new Map<number, number>();
/** The connection whose received prefixes count for each client (the first one up). */
const counting = new Map<number, object>();
const counts = { acceptErrors: 0, accepted: 0, openSent: 0, openReceived: 0, established: 0, received: 0 };

function indexOf(addr: string): number {
  const p = addr.split(".").map(Number);
  return (p[2] - 1) * 250 + (p[3] - 1);
}

/** Prefixes in an IPv4 prefix list (length octet + ceil(len/8) address octets each). */
function prefixCount(b: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i += 1 + ((b[i] + 7) >> 3)) n++;
  return n;
}

/** Announced minus withdrawn IPv4 prefixes of one UPDATE (`m` is the whole message). */
function updateDelta(m: Uint8Array): number {
  const wl = (m[19] << 8) | m[20];
  const al = (m[21 + wl] << 8) | m[22 + wl];
  return prefixCount(m, 23 + wl + al, m.length) - prefixCount(m, 21, 21 + wl);
}

async function session(conn: Deno.TcpConn): Promise<void> {
  counts.accepted++;
  const me = (conn.localAddr as Deno.NetAddr).hostname;
  const i = indexOf(me);
  const sendBytes = async (b: Uint8Array) => {
    for (let off = 0; off < b.length;) off += await conn.write(b.subarray(off));
  };
  const send = (m: BgpMessage) => sendBytes(encode(m, ctx));
  let up = false;
  const self = {};
  let mine = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  try {
    await send({
      type: MessageType.Open,
      version: 4,
      myAs: MY_AS,
      holdTime: 90,
      routerId: me,
      capabilities: [
        { code: 1, kind: "multiprotocol", afi: 1, safi: 1 },
        { code: 2, kind: "route-refresh" },
        { code: 65, kind: "four-octet-as", asn: MY_AS },
      ],
    });
    counts.openSent++;
    // Bytes not yet framed are buf[off, len); parsed in place (slicing per message is quadratic
    // when the reflector sends a thousand small UPDATEs in one read).
    let buf = new Uint8Array(1 << 16);
    let off = 0, len = 0;
    for (;;) {
      if (len === buf.length) {
        if (off > 0) {
          buf.copyWithin(0, off, len);
          len -= off;
          off = 0;
        } else {
          const nb = new Uint8Array(buf.length * 2);
          nb.set(buf.subarray(0, len));
          buf = nb;
        }
      }
      const n = await conn.read(buf.subarray(len));
      if (n === null) break;
      len += n;
      while (len - off >= 19) {
        const mlen = (buf[off + 16] << 8) | buf[off + 17];
        if (mlen < 19) throw new Error(`bad message length ${mlen}`);
        if (len - off < mlen) break;
        const type = buf[off + 18];
        const msg = buf.subarray(off, off + mlen);
        off += mlen;
        if (type === MessageType.Open) {
          counts.openReceived++;
          await sendBytes(KEEPALIVE);
          timer = setInterval(() => void sendBytes(KEEPALIVE).catch(() => {}), 30_000);
        } else if (type === MessageType.Keepalive && !up) {
          up = true;
          upByClient.set(i, (upByClient.get(i) ?? 0) + 1);
          counts.established = upByClient.size;
          if (!counting.has(i)) counting.set(i, self);
          if (ANNOUNCE) {
            await send({
              type: MessageType.Update,
              withdrawn: [],
              attrs: { origin: 0, asPath: [], nextHop: me, localPref: 100 },
              nlri: [{ afi: 1, addr: `10.${100 + (i >> 8)}.${i & 255}.0`, len: 24 }],
            });
          }
        } else if (type === MessageType.Update) {
          if (counting.get(i) === self) {
            const d = updateDelta(msg);
            mine += d;
            counts.received += d;
          }
        } else if (type === MessageType.Notification) return;
      }
      if (off === len) off = len = 0;
    }
  } catch {
    // The reflector closed the session; it will be counted down below.
  } finally {
    clearInterval(timer);
    if (counting.get(i) === self) {
      counting.delete(i);
      counts.received -= mine;
    }
    if (up) {
      const n = upByClient.get(i)! - 1;
      if (n > 0) upByClient.set(i, n);
      else upByClient.delete(i);
      counts.established = upByClient.size;
    }
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

// Several listeners on one port (SO_REUSEPORT): a thousand reflector connections arriving at once
// overflow one listener's accept backlog, and the dropped SYNs then wait for TCP's retransmission
// back-off (1, 3, 7, 15 … s) whatever the reflector does.
const LISTENERS = 16;
setInterval(() => console.log(JSON.stringify(counts)), 200);
for (let i = 0; i < LISTENERS; i++) {
  const listener = Deno.listen({ hostname: "0.0.0.0", port: PORT, reusePort: true });
  (async () => {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        // Out of descriptors (a reflector dialling far more connections than it has peers): say
        // so and keep serving the sessions that exist.
        counts.acceptErrors++;
        if (counts.acceptErrors === 1) console.error(`simulator: accept failed: ${err}`);
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      conn.setNoDelay(true);
      void session(conn);
    }
  })();
}

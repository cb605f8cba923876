/**
 * BGP peer simulator for bench/bgp_many_peers.ts (needs --unstable-net: SO_REUSEPORT listeners), run inside a lab namespace holding many
 * addresses: `deno run -A bench/bgp_peer_sim.ts ASN PORT`. It listens on 0.0.0.0:PORT; every
 * session the route reflector opens to one of the namespace's addresses is one simulated client
 * (router id = that address), which answers OPEN/KEEPALIVE, keeps the session alive, announces one
 * /24 (10.(100 + i / 256).(i % 256).0/24 for address index i) once Established, and counts the
 * prefixes reflected to it. Every 200 ms it prints `{"established":n,"received":n}`.
 *
 * Minimal on purpose (no FSM beyond what a session needs, no policy); uses our codec for framing.
 *
 * @module
 */
import { type BgpMessage, type CodecContext, decode, encode, frame, MessageType } from "../bgp/codec/mod.ts";

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
let established = 0;
let received = 0;

function indexOf(addr: string): number {
  const p = addr.split(".").map(Number);
  return (p[2] - 1) * 250 + (p[3] - 1);
}

async function session(conn: Deno.TcpConn): Promise<void> {
  const me = (conn.localAddr as Deno.NetAddr).hostname;
  const i = indexOf(me);
  const send = async (m: BgpMessage) => {
    const b = encode(m, ctx);
    for (let off = 0; off < b.length;) off += await conn.write(b.subarray(off));
  };
  let up = false;
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
      for (;;) {
        const view = buf.subarray(off, len);
        const f = frame(view, ctx);
        if (f.kind !== "message") break;
        const msg = view.subarray(0, f.length);
        off += f.length;
        if (f.type === MessageType.Open) {
          await send({ type: MessageType.Keepalive });
          timer = setInterval(() => void send({ type: MessageType.Keepalive }).catch(() => {}), 30_000);
        } else if (f.type === MessageType.Keepalive && !up) {
          up = true;
          established++;
          if (ANNOUNCE) {
            await send({
              type: MessageType.Update,
              withdrawn: [],
              attrs: { origin: 0, asPath: [], nextHop: me, localPref: 100 },
              nlri: [{ afi: 1, addr: `10.${100 + (i >> 8)}.${i & 255}.0`, len: 24 }],
            });
          }
        } else if (f.type === MessageType.Update) {
          const d = decode(msg, ctx);
          if (d.ok && d.msg.type === MessageType.Update) {
            received += d.msg.nlri.length - d.msg.withdrawn.length;
          }
        } else if (f.type === MessageType.Notification) return;
      }
      if (off === len) off = len = 0;
    }
  } catch {
    // The reflector closed the session; it will be counted down below.
  } finally {
    clearInterval(timer);
    if (up) established--;
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

// Several listeners on one port (SO_REUSEPORT): a thousand reflector connections arriving at once
// overflow one listener's accept backlog, and the dropped SYNs then wait for TCP's retransmission
// back-off (1, 3, 7, 15 … s) whatever the reflector does.
const LISTENERS = 16;
setInterval(() => console.log(JSON.stringify({ established, received })), 200);
for (let i = 0; i < LISTENERS; i++) {
  const listener = Deno.listen({ hostname: "0.0.0.0", port: PORT, reusePort: true });
  (async () => {
    for await (const conn of listener) {
      conn.setNoDelay(true);
      void session(conn);
    }
  })();
}

/**
 * A UDP socket through libc for what `Deno.listenDatagram` cannot do: set the outgoing TTL /
 * hop limit and read the TTL of each received datagram (IP_RECVTTL / IPV6_RECVHOPLIMIT with
 * `recvmsg`), which BFD single-hop needs for its GTSM check (RFC 5881 §5).
 *
 * `struct msghdr` (LP64): name ptr @0, namelen u32 @8, iov ptr @16, iovlen @24, control ptr
 * @32, controllen @40, flags i32 @48 (56 bytes). `struct cmsghdr`: len u64 @0, level i32 @8,
 * type i32 @12, data @16.
 *
 * @module
 */
import { C, E, errno, libc } from "./libc.ts";
import { sysError, TransportError } from "./errors.ts";
import { decodeSockaddr, encodeSockaddr, formatIp, parseIp, SOCKADDR_STORAGE, unmapV4 } from "./sockaddr.ts";
import { reactor } from "./reactor.ts";

/** One received datagram. */
export interface Datagram {
  data: Uint8Array;
  hostname: string;
  port: number;
  /** IP TTL / IPv6 hop limit it arrived with, when the socket asked for it. */
  ttl?: number;
}

/** Options for `UdpSocket.bind`. */
export interface UdpBindOptions {
  hostname: string;
  port: number;
  /** Outgoing TTL / hop limit. */
  ttl?: number;
  /** Report each datagram's TTL (IP_RECVTTL / IPV6_RECVHOPLIMIT). */
  recvTtl?: boolean;
  /** For an IPv6 wildcard socket: IPv6 only, so an IPv4 socket can share the port. */
  v6Only?: boolean;
  reuseAddr?: boolean;
  /** Largest datagram to receive (default 2048). */
  maxSize?: number;
}

function setInt(fd: number, level: number, opt: number, value: number, op: string, target: string): void {
  const v = new Int32Array([value]);
  if (libc().setsockopt(fd, level, opt, new Uint8Array(v.buffer), 4) < 0) throw sysError(op, target);
}

/** A non-blocking UDP socket owned through FFI. */
export class UdpSocket {
  #fd: number;
  #family: 4 | 6;
  #closed = false;
  readonly addr: { hostname: string; port: number };
  // recvmsg buffers: kept as fields so the pointers in #hdr stay valid.
  #data: Uint8Array;
  #name = new Uint8Array(SOCKADDR_STORAGE);
  #ctrl = new Uint8Array(128);
  #iov = new Uint8Array(16);
  #hdr = new Uint8Array(56);
  #sa = new Uint8Array(SOCKADDR_STORAGE);

  private constructor(fd: number, family: 4 | 6, maxSize: number) {
    this.#fd = fd;
    this.#family = family;
    this.#data = new Uint8Array(maxSize);
    const ptr = (b: Uint8Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
    const iov = new DataView(this.#iov.buffer);
    iov.setBigUint64(0, ptr(this.#data), true);
    iov.setBigUint64(8, BigInt(maxSize), true);
    const h = new DataView(this.#hdr.buffer);
    h.setBigUint64(0, ptr(this.#name), true);
    h.setBigUint64(16, ptr(this.#iov), true);
    h.setBigUint64(24, 1n, true);
    h.setBigUint64(32, ptr(this.#ctrl), true);
    const buf = new Uint8Array(SOCKADDR_STORAGE);
    const len = new Uint32Array([SOCKADDR_STORAGE]);
    if (libc().getsockname(fd, buf, new Uint8Array(len.buffer)) < 0) {
      throw sysError("getsockname", `fd ${fd}`);
    }
    const d = decodeSockaddr(buf)!;
    this.addr = { hostname: formatIp(d.addr), port: d.port };
  }

  /** Creates, configures and binds the socket. Throws `TransportError` (e.g. EADDRINUSE). */
  static bind(o: UdpBindOptions): UdpSocket {
    const target = `${o.hostname.includes(":") ? `[${o.hostname}]` : o.hostname}:${o.port}`;
    const a = parseIp(o.hostname);
    if (!a) throw new TransportError("bind", JSON.stringify(o.hostname), 0, "not an IPv4 or IPv6 address");
    const lib = libc();
    const fd = lib.socket(
      a.family === 4 ? C.AF_INET : C.AF_INET6,
      C.SOCK_DGRAM | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC,
      0,
    );
    if (fd < 0) throw sysError("socket", target);
    try {
      if (o.reuseAddr) setInt(fd, C.SOL_SOCKET, C.SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)", target);
      if (a.family === 6 && o.v6Only) {
        setInt(fd, C.IPPROTO_IPV6, C.IPV6_V6ONLY, 1, "setsockopt(IPV6_V6ONLY)", target);
      }
      if (o.ttl !== undefined) {
        if (a.family === 4) setInt(fd, C.IPPROTO_IP, C.IP_TTL, o.ttl, "setsockopt(IP_TTL)", target);
        else setInt(fd, C.IPPROTO_IPV6, C.IPV6_UNICAST_HOPS, o.ttl, "setsockopt(IPV6_UNICAST_HOPS)", target);
      }
      if (o.recvTtl) {
        if (a.family === 4) setInt(fd, C.IPPROTO_IP, C.IP_RECVTTL, 1, "setsockopt(IP_RECVTTL)", target);
        else setInt(fd, C.IPPROTO_IPV6, C.IPV6_RECVHOPLIMIT, 1, "setsockopt(IPV6_RECVHOPLIMIT)", target);
      }
      const sa = encodeSockaddr(a, o.port);
      if (lib.bind(fd, sa.buf, sa.len) < 0) throw sysError("bind", target);
      return new UdpSocket(fd, a.family, o.maxSize ?? 2048);
    } catch (err) {
      lib.close(fd);
      throw err;
    }
  }

  /**
   * Sends one datagram without waiting. Returns false when the socket buffer is full
   * (EAGAIN: the datagram is dropped, as the network might have); throws on other errors.
   */
  sendTo(data: Uint8Array, hostname: string, port: number): boolean {
    if (this.#closed) throw new Deno.errors.BadResource("bgp transport: sendTo on a closed UDP socket");
    let a = parseIp(hostname);
    if (!a) throw new TransportError("sendto", JSON.stringify(hostname), 0, "not an IPv4 or IPv6 address");
    if (this.#family === 6 && a.family === 4) {
      a = { family: 6, bytes: new Uint8Array([...new Array(10).fill(0), 0xff, 0xff, ...a.bytes]) };
    }
    const sa = encodeSockaddr(a, port, 0, this.#sa);
    const n = Number(libc().sendto(this.#fd, data, BigInt(data.length), 0, sa.buf, sa.len));
    if (n >= 0) return true;
    const e = errno();
    if (e === E.EAGAIN) return false;
    throw new TransportError("sendto", `${hostname}:${port}`, e);
  }

  /** Receives the next datagram (its data is a copy). Rejects with Interrupted when closed. */
  async recv(): Promise<Datagram> {
    const lib = libc();
    const h = new DataView(this.#hdr.buffer);
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("bgp transport: recv on a closed UDP socket");
      h.setUint32(8, SOCKADDR_STORAGE, true);
      h.setBigUint64(40, BigInt(this.#ctrl.length), true);
      h.setInt32(48, 0, true);
      const n = Number(lib.recvmsg(this.#fd, this.#hdr, 0));
      if (n < 0) {
        const e = errno();
        if (e === E.EINTR) continue;
        if (e !== E.EAGAIN) throw new TransportError("recvmsg", `${this.addr.hostname}:${this.addr.port}`, e);
        await reactor.wait(this.#fd, C.POLLIN);
        continue;
      }
      const from = decodeSockaddr(this.#name);
      const dg: Datagram = {
        data: this.#data.slice(0, n),
        hostname: from ? formatIp(unmapV4(from.addr)) : "",
        port: from?.port ?? 0,
      };
      const ttl = readTtl(this.#ctrl, Number(h.getBigUint64(40, true)));
      if (ttl !== undefined) dg.ttl = ttl;
      return dg;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    reactor.cancel(this.#fd, new Deno.errors.Interrupted("bgp transport: UDP socket closed"));
    libc().close(this.#fd);
  }
}

/** Walks the control messages for IP_TTL (IPv4) or IPV6_HOPLIMIT (IPv6). */
export function readTtl(ctrl: Uint8Array, len: number): number | undefined {
  const dv = new DataView(ctrl.buffer, ctrl.byteOffset, Math.min(len, ctrl.byteLength));
  let off = 0;
  while (off + 16 <= dv.byteLength) {
    const clen = Number(dv.getBigUint64(off, true));
    if (clen < 16) return undefined;
    const level = dv.getInt32(off + 8, true);
    const type = dv.getInt32(off + 12, true);
    if (off + 20 <= dv.byteLength) {
      if (level === C.IPPROTO_IP && type === C.IP_TTL) return dv.getInt32(off + 16, true);
      if (level === C.IPPROTO_IPV6 && type === C.IPV6_HOPLIMIT) return dv.getInt32(off + 16, true);
    }
    off += (clen + 7) & ~7;
  }
  return undefined;
}

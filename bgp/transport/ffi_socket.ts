/**
 * TCP sockets created and driven through libc (see libc.ts and reactor.ts), for what Deno's
 * own sockets cannot do: TCP MD5 signatures (RFC 2385), the IP TTL / hop limit (eBGP
 * multihop), the minimum accepted TTL (GTSM, RFC 5082) and binding a local address before
 * connecting.
 *
 * @module
 */
import { C, E, errno, libc } from "./libc.ts";
import { sysError, TransportError } from "./errors.ts";
import { encodeMd5Sig } from "./md5.ts";
import {
  decodeSockaddr,
  encodeSockaddr,
  formatIp,
  type IpAddr,
  mapV4,
  parseIp,
  SOCKADDR_STORAGE,
  unmapV4,
} from "./sockaddr.ts";
import { reactor } from "./reactor.ts";

/** host:port as Deno's `Deno.NetAddr` has them (IPv4-mapped IPv6 shown as IPv4). */
export interface Endpoint {
  hostname: string;
  port: number;
}

/** Socket options the FFI path applies before connect/listen. */
export interface SocketOptions {
  /** Outgoing IP TTL / IPv6 hop limit (1–255). */
  ttl?: number;
  /** Drop incoming segments with a lower TTL (IP_MINTTL / IPV6_MINHOPCOUNT, 1–255). */
  minTtl?: number;
}

function addrOrThrow(text: string, what: string): IpAddr {
  const a = parseIp(text);
  if (!a) {
    throw new TransportError(what, JSON.stringify(text), 0, "not an IPv4 or IPv6 address");
  }
  return a;
}

function checkByte(v: number | undefined, field: string): void {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < 1 || v > 255) {
    throw new RangeError(`bgp transport: ${field} is ${v}; accepted: an integer 1–255`);
  }
}

function setInt(fd: number, level: number, opt: number, value: number, op: string, target: string): void {
  const v = new Int32Array([value]);
  if (libc().setsockopt(fd, level, opt, new Uint8Array(v.buffer), 4) < 0) throw sysError(op, target);
}

function getInt(fd: number, level: number, opt: number): number {
  const v = new Int32Array(1);
  const len = new Uint32Array([4]);
  if (libc().getsockopt(fd, level, opt, new Uint8Array(v.buffer), new Uint8Array(len.buffer)) < 0) {
    return -errno();
  }
  return v[0];
}

function applyTtl(fd: number, family: 4 | 6, o: SocketOptions, target: string): void {
  checkByte(o.ttl, "ttl");
  checkByte(o.minTtl, "minTtl");
  if (o.ttl !== undefined) {
    setInt(fd, C.IPPROTO_IP, C.IP_TTL, o.ttl, "setsockopt(IP_TTL)", target);
    if (family === 6) {
      setInt(fd, C.IPPROTO_IPV6, C.IPV6_UNICAST_HOPS, o.ttl, "setsockopt(IPV6_UNICAST_HOPS)", target);
    }
  }
  if (o.minTtl !== undefined) {
    setInt(fd, C.IPPROTO_IP, C.IP_MINTTL, o.minTtl, "setsockopt(IP_MINTTL)", target);
    if (family === 6) {
      setInt(fd, C.IPPROTO_IPV6, C.IPV6_MINHOPCOUNT, o.minTtl, "setsockopt(IPV6_MINHOPCOUNT)", target);
    }
  }
}

/**
 * Installs (password) or removes (null) the TCP MD5 key for `peer` on socket `fd`. On a
 * dual-stack IPv6 socket an IPv4 peer is given as `::ffff:a.b.c.d`, which Linux stores as an
 * IPv4 key. Removing a key that is not there is success.
 */
export function setMd5Key(fd: number, sockFamily: 4 | 6, peer: string, password: string | null): void {
  let a = addrOrThrow(peer, "setsockopt(TCP_MD5SIG)");
  if (sockFamily === 6) a = mapV4(a);
  else if (a.family === 6) {
    const u = unmapV4(a);
    if (u.family === 6) {
      throw new TransportError("setsockopt(TCP_MD5SIG)", peer, 0, "IPv6 peer on an IPv4 socket");
    }
    a = u;
  }
  const buf = encodeMd5Sig(a, password);
  if (libc().setsockopt(fd, C.IPPROTO_TCP, C.TCP_MD5SIG, buf, buf.length) < 0) {
    const e = errno();
    if (password === null && e === E.ENOENT) return;
    throw new TransportError("setsockopt(TCP_MD5SIG)", peer, e);
  }
}

function sockName(fd: number, peer: boolean): Endpoint {
  const buf = new Uint8Array(SOCKADDR_STORAGE);
  const len = new Uint32Array([SOCKADDR_STORAGE]);
  const lenBuf = new Uint8Array(len.buffer);
  const r = peer ? libc().getpeername(fd, buf, lenBuf) : libc().getsockname(fd, buf, lenBuf);
  if (r < 0) throw sysError(peer ? "getpeername" : "getsockname", `fd ${fd}`);
  const d = decodeSockaddr(buf);
  if (!d) return { hostname: "", port: 0 };
  return { hostname: formatIp(unmapV4(d.addr)), port: d.port };
}

function newSocket(family: 4 | 6, type: number, target: string): number {
  const fd = libc().socket(
    family === 4 ? C.AF_INET : C.AF_INET6,
    type | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC,
    0,
  );
  if (fd < 0) throw sysError("socket", target);
  return fd;
}

/** A connected TCP socket owned through FFI; satisfies the `BgpConn` contract like `Deno.Conn`. */
export class FfiConn {
  #fd: number;
  #closed = false;
  readonly localAddr: Endpoint;
  readonly remoteAddr: Endpoint;

  /** Takes ownership of a connected non-blocking descriptor. */
  constructor(fd: number) {
    this.#fd = fd;
    this.localAddr = sockName(fd, false);
    this.remoteAddr = sockName(fd, true);
  }

  /** The kernel descriptor (for diagnostics and tests, e.g. reading back socket options). */
  get fd(): number {
    return this.#fd;
  }

  /** Reads up to `p.length` bytes; null at end of stream. Rejects with `Deno.errors.Interrupted` if closed meanwhile. */
  async read(p: Uint8Array): Promise<number | null> {
    if (p.length === 0) return 0;
    const lib = libc();
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("bgp transport: read on a closed socket");
      const n = Number(lib.recv(this.#fd, p, BigInt(p.length), 0));
      if (n > 0) return n;
      if (n === 0) return null;
      const e = errno();
      if (e === E.EINTR) continue;
      if (e !== E.EAGAIN) throw new TransportError("recv", this.#name(), e);
      await reactor.wait(this.#fd, C.POLLIN);
    }
  }

  /** Writes at least one byte of `p` (waiting for buffer space) and returns how many were taken. */
  async write(p: Uint8Array): Promise<number> {
    if (p.length === 0) return 0;
    const lib = libc();
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("bgp transport: write on a closed socket");
      // MSG_NOSIGNAL: a peer reset is an EPIPE error here, never a SIGPIPE.
      const n = Number(lib.send(this.#fd, p, BigInt(p.length), C.MSG_NOSIGNAL));
      if (n >= 0) return n;
      const e = errno();
      if (e === E.EINTR) continue;
      if (e !== E.EAGAIN) throw new TransportError("send", this.#name(), e);
      await reactor.wait(this.#fd, C.POLLOUT);
    }
  }

  /** Reads a socket option as an int (tests use it to check IP_TTL); negative errno on failure. */
  getIntOption(level: number, opt: number): number {
    return getInt(this.#fd, level, opt);
  }

  /** Closes the socket; pending reads/writes reject with `Deno.errors.Interrupted`. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    reactor.cancel(this.#fd, new Deno.errors.Interrupted("bgp transport: socket closed"));
    libc().close(this.#fd);
  }

  #name(): string {
    return `${this.remoteAddr.hostname}:${this.remoteAddr.port}`;
  }
}

/** Options for `connectFfi`. */
export interface FfiConnectOptions extends SocketOptions {
  hostname: string;
  port: number;
  localAddress?: string;
  localPort?: number;
  password?: string;
  signal?: AbortSignal;
}

/** Connects a TCP socket with MD5/TTL/local address applied before the SYN is sent. */
export async function connectFfi(o: FfiConnectOptions): Promise<FfiConn> {
  const target = `${o.hostname.includes(":") ? `[${o.hostname}]` : o.hostname}:${o.port}`;
  let remote = addrOrThrow(o.hostname, "connect");
  const local = o.localAddress ? addrOrThrow(o.localAddress, "bind") : undefined;
  if (local && local.family !== remote.family) {
    // An IPv4 peer from an IPv6 local address only works through the mapped form.
    if (local.family === 6) remote = mapV4(remote);
    else {throw new TransportError(
        "bind",
        o.localAddress!,
        0,
        `IPv4 local address for IPv6 peer ${o.hostname}`,
      );}
  }
  o.signal?.throwIfAborted();
  const family = remote.family;
  const lib = libc();
  const fd = newSocket(family, C.SOCK_STREAM, target);
  try {
    applyTtl(fd, family, o, target);
    if (o.password) setMd5Key(fd, family, o.hostname, o.password);
    setInt(fd, C.IPPROTO_TCP, C.TCP_NODELAY, 1, "setsockopt(TCP_NODELAY)", target);
    if (local) {
      setInt(fd, C.SOL_SOCKET, C.SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)", target);
      const sa = encodeSockaddr(local, o.localPort ?? 0, ifIndex(local.zone));
      if (lib.bind(fd, sa.buf, sa.len) < 0) throw sysError("bind", `${o.localAddress}`);
    }
    const sa = encodeSockaddr(remote, o.port, ifIndex(remote.zone));
    if (lib.connect(fd, sa.buf, sa.len) < 0) {
      const e = errno();
      if (e !== E.EINPROGRESS && e !== E.EINTR) throw new TransportError("connect", target, e);
      await reactor.wait(fd, C.POLLOUT, o.signal);
      const soErr = getInt(fd, C.SOL_SOCKET, C.SO_ERROR);
      if (soErr !== 0) throw new TransportError("connect", target, Math.abs(soErr));
    }
    return new FfiConn(fd);
  } catch (err) {
    lib.close(fd);
    throw err;
  }
}

function ifIndex(zone: string | undefined): number {
  if (!zone) return 0;
  if (/^[0-9]+$/.test(zone)) return Number(zone);
  const idx = libc().if_nametoindex(new TextEncoder().encode(zone + "\0"));
  if (idx === 0) throw new TransportError("if_nametoindex", JSON.stringify(zone), errno());
  return idx;
}

/** Options for `listenFfi`. */
export interface FfiListenOptions extends SocketOptions {
  hostname: string;
  port: number;
  /** peer address → MD5 password. */
  passwords?: Record<string, string>;
  backlog?: number;
}

/** A listening TCP socket owned through FFI, with per-peer MD5 keys changeable at run time. */
export class FfiListener implements AsyncIterable<FfiConn> {
  #fd: number;
  #family: 4 | 6;
  #closed = false;
  readonly addr: Endpoint;

  /** Takes ownership of a listening descriptor of the given family. */
  constructor(fd: number, family: 4 | 6) {
    this.#fd = fd;
    this.#family = family;
    this.addr = sockName(fd, false);
  }

  /**
   * Adds, replaces (password) or removes (null) the MD5 key for connections from `peer`.
   * Linux checks the key during the handshake, so it applies to the next SYN from that peer;
   * connections already accepted keep the key they were accepted with.
   */
  setPassword(peer: string, password: string | null): void {
    if (this.#closed) throw new Deno.errors.BadResource("bgp transport: setPassword on a closed listener");
    setMd5Key(this.#fd, this.#family, peer, password);
  }

  /** Waits for the next connection. Rejects with `Deno.errors.Interrupted` if the listener closes. */
  async accept(): Promise<FfiConn> {
    const lib = libc();
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("bgp transport: accept on a closed listener");
      const fd = lib.accept4(this.#fd, null, null, C.SOCK_NONBLOCK | C.SOCK_CLOEXEC);
      if (fd >= 0) {
        try {
          return new FfiConn(fd);
        } catch {
          // The peer reset before we asked its name: drop it and keep accepting.
          lib.close(fd);
          continue;
        }
      }
      const e = errno();
      if (e === E.EINTR || e === E.ECONNRESET) continue;
      if (e !== E.EAGAIN) throw new TransportError("accept", `${this.addr.hostname}:${this.addr.port}`, e);
      await reactor.wait(this.#fd, C.POLLIN);
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<FfiConn> {
    for (;;) {
      try {
        yield await this.accept();
      } catch (err) {
        if (this.#closed) return;
        throw err;
      }
    }
  }

  /** Stops listening; a pending accept ends the iteration. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    reactor.cancel(this.#fd, new Deno.errors.Interrupted("bgp transport: listener closed"));
    libc().close(this.#fd);
  }
}

/** Binds and listens with MD5 keys and TTL options set on the listening socket. */
export function listenFfi(o: FfiListenOptions): FfiListener {
  const host = o.hostname || "0.0.0.0";
  const target = `${host.includes(":") ? `[${host}]` : host}:${o.port}`;
  const a = addrOrThrow(host, "listen");
  const fd = newSocket(a.family, C.SOCK_STREAM, target);
  try {
    setInt(fd, C.SOL_SOCKET, C.SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)", target);
    applyTtl(fd, a.family, o, target);
    for (const [peer, pw] of Object.entries(o.passwords ?? {})) setMd5Key(fd, a.family, peer, pw);
    const sa = encodeSockaddr(a, o.port, ifIndex(a.zone));
    if (libc().bind(fd, sa.buf, sa.len) < 0) throw sysError("bind", target);
    if (libc().listen(fd, o.backlog ?? 128) < 0) throw sysError("listen", target);
    return new FfiListener(fd, a.family);
  } catch (err) {
    libc().close(fd);
    throw err;
  }
}

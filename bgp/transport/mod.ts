/**
 * The socket layer of the BGP speaker: what the session dials and listens with.
 *
 * Plain `Deno.connect`/`Deno.listen` sockets are used when nothing special is asked; a TCP MD5
 * password, an IP TTL, a minimum TTL or a local address switches to sockets created through
 * libc with `Deno.dlopen` (needs `--allow-ffi`; see README.md). Both kinds satisfy `BgpConn`.
 *
 * @module
 */
import { connectFfi, listenFfi } from "./ffi_socket.ts";
import { ffiAllowed } from "./libc.ts";

export { TransportError } from "./errors.ts";
export { FfiConn, FfiListener } from "./ffi_socket.ts";

/** A byte stream to a BGP peer. `Deno.Conn` satisfies it, as does `FfiConn`. */
export interface BgpConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
  readonly localAddr: { hostname: string; port: number };
  readonly remoteAddr: { hostname: string; port: number };
}

/** What `connectTcp` accepts. */
export interface ConnectOptions {
  hostname: string;
  port: number;
  /** Source address to bind before connecting (FFI path). */
  localAddress?: string;
  /** TCP MD5 password (RFC 2385), plain text, at most 80 bytes. */
  password?: string;
  /** IP TTL / IPv6 hop limit of our segments (eBGP multihop), 1–255. */
  ttl?: number;
  /** GTSM (RFC 5082): drop segments that arrive with a lower TTL, 1–255. */
  minTtl?: number;
  signal?: AbortSignal;
}

/** Opens a TCP connection to a peer. Rejects with `TransportError` (errno + message) on failure. */
export async function connectTcp(o: ConnectOptions): Promise<BgpConn> {
  if (o.password || o.ttl !== undefined || o.minTtl !== undefined || o.localAddress) {
    return await connectFfi(o);
  }
  o.signal?.throwIfAborted();
  const conn = Deno.connect({ hostname: o.hostname, port: o.port, transport: "tcp" });
  if (!o.signal) return plain(await conn);
  // Deno.connect cannot be cancelled; on abort we reject now and close the socket when it lands.
  const signal = o.signal;
  return await new Promise<BgpConn>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    conn.then(
      (c) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) c.close();
        else resolve(plain(c));
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

function plain(c: Deno.TcpConn): BgpConn {
  c.setNoDelay(true);
  return c as unknown as BgpConn;
}

/** A listening socket for incoming BGP connections. */
export interface BgpListener extends AsyncIterable<BgpConn> {
  close(): void;
  /** Adds/replaces (password) or removes (null) the MD5 key for connections from `peer`. */
  setPassword(peer: string, password: string | null): void;
  readonly addr: { hostname: string; port: number };
}

/** What `listenTcp` accepts. */
export interface ListenOptions {
  hostname: string;
  port: number;
  /** peer address → MD5 password. */
  passwords?: Record<string, string>;
  ttl?: number;
  minTtl?: number;
  /**
   * Socket kind: "ffi" so `setPassword` works later; "deno" for a plain listener
   * (`setPassword` then throws). Default: "ffi" when passwords/TTL are given or FFI is
   * permitted (a peer with a password may be added at run time), else "deno".
   */
  kind?: "ffi" | "deno";
}

/** Starts listening. Errors (bind, listen, MD5 key) are thrown at once as `TransportError`. */
export function listenTcp(o: ListenOptions): BgpListener {
  const needsFfi = Object.keys(o.passwords ?? {}).length > 0 || o.ttl !== undefined || o.minTtl !== undefined;
  const kind = o.kind ?? (needsFfi || ffiAllowed() ? "ffi" : "deno");
  if (kind === "ffi") return listenFfi(o);
  if (needsFfi) {
    throw new RangeError('bgp transport: passwords/ttl need the FFI listener; kind "deno" was asked');
  }
  return new PlainListener(Deno.listen({ hostname: o.hostname, port: o.port, transport: "tcp" }));
}

class PlainListener implements BgpListener {
  #l: Deno.TcpListener;
  readonly addr: { hostname: string; port: number };
  constructor(l: Deno.TcpListener) {
    this.#l = l;
    this.addr = { hostname: l.addr.hostname, port: l.addr.port };
  }
  setPassword(peer: string, password: string | null): void {
    if (password === null) return;
    throw new Error(
      `bgp transport: cannot set a TCP MD5 password for ${peer} on a plain Deno listener; run with --allow-ffi`,
    );
  }
  close(): void {
    try {
      this.#l.close();
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
  }
  async *[Symbol.asyncIterator](): AsyncIterator<BgpConn> {
    try {
      for await (const c of this.#l) yield plain(c);
    } catch (err) {
      if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) return;
      throw err;
    }
  }
}

/** Writes all of `p` (BgpConn.write may take only part of it). */
export async function writeAll(conn: BgpConn, p: Uint8Array): Promise<void> {
  let off = 0;
  while (off < p.length) off += await conn.write(p.subarray(off));
}

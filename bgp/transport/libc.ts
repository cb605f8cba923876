/**
 * The libc symbols the FFI socket layer needs, loaded lazily with `Deno.dlopen` so that the
 * plain `Deno.connect`/`Deno.listen` path never asks for `--allow-ffi`.
 *
 * Every call that can fail is made synchronously on the JS thread, and `errno` is read right
 * after it through `__errno_location()` (which is thread-local, so it must be the same thread).
 * Only `poll()` is declared `nonblocking` (it runs on Deno's blocking-task pool and its errno is
 * never needed: a failed poll is simply retried). The layouts below are the Linux x86_64/aarch64
 * ABI (LP64).
 *
 * @module
 */

/** Linux constants (asm-generic; identical on x86_64 and aarch64). */
export const C = {
  AF_INET: 2,
  AF_INET6: 10,
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  SOCK_NONBLOCK: 0o4000,
  SOCK_CLOEXEC: 0o2000000,
  SOL_SOCKET: 1,
  SO_REUSEADDR: 2,
  SO_ERROR: 4,
  SO_BINDTODEVICE: 25,
  IPPROTO_IP: 0,
  IPPROTO_TCP: 6,
  IPPROTO_UDP: 17,
  IPPROTO_IPV6: 41,
  IP_TTL: 2,
  IP_RECVTTL: 12,
  IP_MINTTL: 21,
  IPV6_UNICAST_HOPS: 16,
  IPV6_V6ONLY: 26,
  IPV6_RECVHOPLIMIT: 51,
  IPV6_HOPLIMIT: 52,
  IPV6_MINHOPCOUNT: 73,
  TCP_NODELAY: 1,
  TCP_MD5SIG: 14,
  MSG_NOSIGNAL: 0x4000,
  POLLIN: 0x1,
  POLLOUT: 0x4,
  POLLERR: 0x8,
  POLLHUP: 0x10,
  POLLNVAL: 0x20,
  EFD_NONBLOCK: 0o4000,
  EFD_CLOEXEC: 0o2000000,
} as const;

/** errno values the layer reacts to (asm-generic/errno*.h). */
export const E = {
  EINTR: 4,
  EAGAIN: 11,
  ENOENT: 2,
  EINPROGRESS: 115,
  EALREADY: 114,
  ECONNREFUSED: 111,
  ETIMEDOUT: 110,
  ECONNRESET: 104,
  EPIPE: 32,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  EPERM: 1,
  EACCES: 13,
  EINVAL: 22,
  ENOPROTOOPT: 92,
  EHOSTUNREACH: 113,
  ENETUNREACH: 101,
} as const;

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(E).map(([k, v]) => [v, k]),
);

/** The symbolic name of an errno, or `E<number>` when we have no name for it. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `E${errno}`;
}

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
  /** The only call that blocks: it runs on a worker thread so the event loop keeps going. */
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
} as const;

/** The loaded libc symbols. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

/**
 * Loads libc on first use. Throws a one-line error naming `--allow-ffi` when the permission is
 * missing, since that is the usual reason this fails.
 */
export function libc(): Libc {
  if (lib) return lib.symbols;
  if (Deno.build.os !== "linux") {
    throw new Error(`bgp transport: TCP MD5/TTL sockets need Linux, this is "${Deno.build.os}"`);
  }
  const names = ["libc.so.6", "libc.so"];
  let last: unknown;
  for (const name of names) {
    try {
      lib = Deno.dlopen(name, SYMBOLS);
      return lib.symbols;
    } catch (err) {
      if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
        throw new Error(
          "bgp transport: TCP MD5 passwords, TTL and local addresses need libc through FFI; run with --allow-ffi",
          { cause: err },
        );
      }
      last = err;
    }
  }
  throw new Error(`bgp transport: cannot load libc (tried ${names.join(", ")})`, { cause: last });
}

/** errno of the last failed call on this thread; call it right after the failing call. */
export function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

/** libc's message for an errno ("Connection refused"). */
export function strerror(code: number): string {
  const p = libc().strerror(code);
  return p === null ? `errno ${code}` : Deno.UnsafePointerView.getCString(p);
}

/** Whether this process may use FFI, without prompting. */
export function ffiAllowed(): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}

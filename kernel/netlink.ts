/**
 * A NETLINK_ROUTE socket through FFI to libc: many messages per `sendto`, acknowledgements read in
 * bulk. Used by `CommandRunner.netlink()` to install learned routes at Internet scale, where one
 * `ip -batch` line per route (one round trip each, plus text parsing on both sides) is several
 * times slower than the kernel (bench/netlink_route_rate.c measures the kernel's own rate).
 *
 * The socket is opened inside the runner's network namespace (setns on the calling thread for the
 * `socket()` call only, then back): a netlink socket stays bound to the namespace it was created
 * in, so everything sent later lands there whatever thread sends it.
 *
 * `transact` is synchronous on the JS thread; one of a few hundred routes takes a few
 * milliseconds of kernel time. `transactOffThread` runs the `sendto` (where the kernel does the
 * work: rtnetlink handles every message inside the send) on a runtime thread, so the JS thread
 * goes on reading BGP while the kernel installs the previous chunk.
 *
 * @module
 */

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  /** The same on a runtime thread: the kernel's route work runs beside the JS thread. */
  sendtoOffThread: {
    name: "sendto",
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "isize",
    nonblocking: true,
  },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  setns: { parameters: ["i32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_SNDBUF = 7;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const CLONE_NEWNET = 0x40000000;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const EINTR = 4;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

function libc(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  if (!lib) {
    let last: unknown;
    for (const name of ["libc.so.6", "libc.so"]) {
      try {
        lib = Deno.dlopen(name, SYMBOLS);
        break;
      } catch (e) {
        last = e;
      }
    }
    if (!lib) throw new Error("netlink: cannot load libc", { cause: last });
  }
  return lib.symbols;
}

function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

function cstr(s: string): Uint8Array<ArrayBuffer> {
  const b = new TextEncoder().encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** Whether this process may use FFI (checked without prompting). */
export function netlinkAllowed(): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}

/** One message's outcome: 0, or the errno the kernel answered (positive). */
export type Errno = number;

/** A NETLINK_ROUTE channel (kernel/exec.ts `Runner.netlink`). */
export interface NetlinkChannel {
  /**
   * Sends `count` complete netlink messages (each with NLM_F_ACK and a sequence number
   * `firstSeq + i`) in one `sendto` and reads their acknowledgements; returns one errno per
   * message (0 = done). Replies other than acknowledgements (e.g. to a GET) are passed to
   * `onReply` with their sequence number.
   */
  transact(
    msgs: Uint8Array<ArrayBuffer>,
    count: number,
    firstSeq: number,
    onReply?: (seq: number, msg: DataView) => void,
  ): Int32Array;
  /**
   * For writes: the send runs on another thread (`msgs` must stay unchanged until it settles),
   * and the caller has set NLM_F_ACK on the last message only (kernel/ip/route_write.ts
   * `Encoder.ackLast`). The others are answered only when they fail
   * (their entry stays 0 otherwise); the last one's answer ends the transaction, as the kernel
   * handles one send's messages in order.
   */
  transactOffThread(msgs: Uint8Array<ArrayBuffer>, count: number, firstSeq: number): Promise<Int32Array>;
  close(): void;
}

/** Opens a NETLINK_ROUTE socket in namespace `netns` (a name under /run/netns) or this one. */
export function openNetlink(netns?: string): NetlinkChannel {
  const c = libc();
  let back = -1;
  if (netns) {
    back = c.open(cstr("/proc/thread-self/ns/net"), O_RDONLY | O_CLOEXEC);
    const target = c.open(cstr(`/run/netns/${netns}`), O_RDONLY | O_CLOEXEC);
    if (back < 0 || target < 0) {
      const e = errno();
      if (back >= 0) c.close(back);
      if (target >= 0) c.close(target);
      throw new Error(`netlink: cannot open namespace ${netns} (errno ${e})`);
    }
    const r = c.setns(target, CLONE_NEWNET);
    const e = errno();
    c.close(target);
    if (r < 0) {
      c.close(back);
      throw new Error(`netlink: setns ${netns} failed (errno ${e})`);
    }
  }
  // socket() cannot throw (FFI call), so the namespace is always restored right after it.
  const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  const err = fd < 0 ? errno() : 0;
  if (back >= 0) {
    const r = c.setns(back, CLONE_NEWNET);
    const e = errno();
    c.close(back);
    // Staying in the wrong namespace would send every later socket of this thread there.
    if (r < 0) {
      if (fd >= 0) c.close(fd);
      throw new Error(`netlink: cannot return to the original namespace (errno ${e})`);
    }
  }
  if (fd < 0) throw new Error(`netlink: socket(AF_NETLINK) failed (errno ${err})`);
  const int = (v: number) => new Uint8Array(new Int32Array([v]).buffer);
  // Acks are capped to the header (36 bytes each); a large receive buffer holds a whole chunk's.
  c.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, int(1), 4);
  c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, int(4 << 20), 4);
  c.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, int(4 << 20), 4);
  const sa = new Uint8Array(12);
  sa[0] = AF_NETLINK;
  if (c.bind(fd, sa, 12) < 0) {
    const e = errno();
    c.close(fd);
    throw new Error(`netlink: bind failed (errno ${e})`);
  }
  const rbuf = new Uint8Array(1 << 20);
  const rview = new DataView(rbuf.buffer);
  let closed = false, inFlight = false;
  const send = (msgs: Uint8Array<ArrayBuffer>) => {
    for (;;) {
      const n = Number(c.sendto(fd, msgs, BigInt(msgs.byteLength), 0, sa, 12));
      if (n === msgs.byteLength) return;
      const e = errno();
      if (n < 0 && e === EINTR) continue;
      throw new Error(`netlink: sendto failed (errno ${e})`);
    }
  };
  /**
   * Reads the answers to messages `firstSeq`..`firstSeq + count - 1`: all of them, or (`lastOnly`)
   * until the last one's. They are queued by the time the send returns (the kernel answers
   * inside it), so this does not wait.
   */
  const acks = (
    count: number,
    firstSeq: number,
    onReply?: (seq: number, msg: DataView) => void,
    lastOnly = false,
  ) => {
    const out = new Int32Array(count);
    const seen = new Uint8Array(count);
    let acked = 0;
    while (lastOnly ? !seen[count - 1] : acked < count) {
      const n = Number(c.recv(fd, rbuf, BigInt(rbuf.byteLength), 0));
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        throw new Error(`netlink: recv failed (errno ${e})`);
      }
      let off = 0;
      while (off + 16 <= n) {
        const len = rview.getUint32(off, true);
        const type = rview.getUint16(off + 4, true);
        const seq = rview.getUint32(off + 8, true);
        if (len < 16 || off + len > n) break;
        const i = seq - firstSeq;
        if (i >= 0 && i < count) {
          if (type === NLMSG_ERROR) {
            if (!seen[i]) {
              seen[i] = 1;
              acked++;
              out[i] = -rview.getInt32(off + 16, true);
            }
          } else if (type !== NLMSG_DONE && onReply) {
            onReply(seq, new DataView(rbuf.buffer, off, len));
          }
        }
        off += (len + 3) & ~3;
      }
    }
    return out;
  };
  return {
    transact(msgs, count, firstSeq, onReply) {
      if (closed) throw new Error("netlink: channel closed");
      // Its reads would take the acknowledgements the pending send is owed.
      if (inFlight) throw new Error("netlink: a transaction is still in flight on this channel");
      send(msgs);
      return acks(count, firstSeq, onReply);
    },
    async transactOffThread(msgs, count, firstSeq) {
      if (closed) throw new Error("netlink: channel closed");
      if (inFlight) throw new Error("netlink: a transaction is still in flight on this channel");
      inFlight = true;
      let n: number;
      try {
        n = Number(await c.sendtoOffThread(fd, msgs, BigInt(msgs.byteLength), 0, sa, 12));
      } finally {
        inFlight = false;
      }
      if (closed) throw new Error("netlink: channel closed");
      // A netlink send is all or nothing. The errno of a failed one is the runtime thread's, so
      // the send is repeated here, where EINTR is retried and a real error is read and reported.
      if (n !== msgs.byteLength) send(msgs);
      return acks(count, firstSeq, undefined, true);
    },
    close() {
      if (!closed) {
        closed = true;
        c.close(fd);
      }
    },
  };
}

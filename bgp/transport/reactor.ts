/**
 * One readiness loop for every FFI socket: a single `poll()` over all waited-on descriptors
 * runs on a Deno worker thread (`nonblocking: true`), plus an eventfd the JS thread writes to
 * when the set changes or a socket closes, so the poll returns at once instead of after a
 * timeout. All reads and writes stay on the JS thread as non-blocking calls that are retried
 * after readiness; so there is one extra thread in use, whatever the number of sockets.
 *
 * The loop only runs while someone waits: an idle process has no pending op (tests' op
 * sanitizer stays quiet and the process can exit).
 *
 * @module
 */
import { C, libc } from "./libc.ts";

interface Waiter {
  fd: number;
  events: number;
  resolve: (revents: number) => void;
  reject: (err: unknown) => void;
}

/** Upper bound on one poll so a lost wake-up can never stall the loop for long. */
const POLL_TIMEOUT_MS = 1000;

class Reactor {
  #waiters = new Set<Waiter>();
  #wakeFd = -1;
  #running = false;
  #polling = false;
  #one = new BigUint64Array([1n]);
  #drain = new Uint8Array(8);

  /** Resolves with `revents` once `fd` is ready for `events` (or has an error/hang-up). */
  wait(fd: number, events: number, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    return new Promise<number>((resolve, reject) => {
      const w: Waiter = { fd, events, resolve, reject };
      if (signal) {
        const onAbort = () => {
          if (this.#waiters.delete(w)) {
            reject(signal.reason);
            this.#wake();
          }
        };
        signal.addEventListener("abort", onAbort, { once: true });
        w.resolve = (r) => {
          signal.removeEventListener("abort", onAbort);
          resolve(r);
        };
        w.reject = (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        };
      }
      this.#waiters.add(w);
      this.#wake();
      if (!this.#running) this.#run();
    });
  }

  /** Rejects every waiter on `fd` with `err` (used by close()). */
  cancel(fd: number, err: unknown): void {
    for (const w of this.#waiters) {
      if (w.fd === fd) {
        this.#waiters.delete(w);
        w.reject(err);
      }
    }
    this.#wake();
  }

  #wake(): void {
    if (!this.#polling || this.#wakeFd < 0) return;
    libc().write(this.#wakeFd, new Uint8Array(this.#one.buffer), 8n);
  }

  async #run(): Promise<void> {
    this.#running = true;
    const lib = libc();
    if (this.#wakeFd < 0) {
      this.#wakeFd = lib.eventfd(0, C.EFD_NONBLOCK | C.EFD_CLOEXEC);
    }
    try {
      while (this.#waiters.size > 0) {
        // Merge interest per fd; slot 0 is the wake-up eventfd.
        const interest = new Map<number, number>();
        for (const w of this.#waiters) interest.set(w.fd, (interest.get(w.fd) ?? 0) | w.events);
        const fds = [...interest.keys()];
        const pfd = new Uint8Array(8 * (fds.length + 1));
        const dv = new DataView(pfd.buffer);
        dv.setInt32(0, this.#wakeFd, true);
        dv.setInt16(4, C.POLLIN, true);
        fds.forEach((fd, i) => {
          dv.setInt32(8 * (i + 1), fd, true);
          dv.setInt16(8 * (i + 1) + 4, interest.get(fd)!, true);
        });
        this.#polling = true;
        const n = await lib.poll(pfd, BigInt(fds.length + 1), POLL_TIMEOUT_MS);
        this.#polling = false;
        if (n <= 0) continue; // timeout or EINTR: rebuild and poll again
        if (dv.getInt16(6, true) !== 0) lib.read(this.#wakeFd, this.#drain, 8n);
        const ready = new Map<number, number>();
        fds.forEach((fd, i) => {
          const rev = dv.getInt16(8 * (i + 1) + 6, true);
          if (rev !== 0) ready.set(fd, rev);
        });
        if (ready.size === 0) continue;
        const errBits = C.POLLERR | C.POLLHUP | C.POLLNVAL;
        for (const w of [...this.#waiters]) {
          const rev = ready.get(w.fd);
          if (rev !== undefined && (rev & (w.events | errBits)) !== 0) {
            this.#waiters.delete(w);
            w.resolve(rev);
          }
        }
      }
    } finally {
      this.#running = false;
      this.#polling = false;
    }
  }
}

/** The process-wide reactor. */
export const reactor: Reactor = new Reactor();

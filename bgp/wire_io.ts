/**
 * One TCP connection's wire I/O for a session: the receive buffer cut into whole messages, read
 * with back-pressure and processed in time slices, and the write queue coalescing messages into
 * large writes. It knows bytes and framing only; what a message means is the session's business
 * (`WireHandler`). Each connection has its own object, so a dropped connection's queue (its
 * NOTIFICATION) still drains while the next connection's OPEN goes out on the next object.
 *
 * @module
 */

import type { BgpError } from "./codec/errors.ts";
import { type CodecContext, defaultCodecContext } from "./codec/types.ts";
import { errMsg, safeClose } from "./connect.ts";
import type { BgpConn } from "./transport/mod.ts";
import { frameMessage } from "./wire.ts";

/** What the session does with what arrives. Called only while the connection is attached. */
export interface WireHandler {
  /** One whole message (a view, valid during the call only). May detach the connection. */
  message(bytes: Uint8Array): void;
  /** The next message's header is bad (RFC 4271 §6.1): the session resets. */
  headerError(e: BgpError): void;
  /** `message` threw: our own bug on peer input. */
  internalError(err: unknown): void;
  /** Reading or writing failed, or the peer closed the connection. */
  failed(reason: string): void;
  /** A slice of messages was processed (the speaker exports what they changed). */
  sliceDone(): void;
}

/** Longest stretch of message processing before yielding to the event loop. */
const DRAIN_SLICE_MS = 20;
/**
 * Receive buffer at the first read. Sessions that carry little (the common case with many peers)
 * never need more; a buffer is resident memory per connection (a 256 KiB one costs ~140 kB RSS
 * even when barely used, measured), so it starts small.
 */
const INITIAL_BUFFER = 8192;
/**
 * The buffer doubles while reads fill all the room it has, up to this much room per read: large
 * reads let a full-table sender fill its window in few reads.
 */
const MAX_READ = 256 * 1024;
/** Largest coalesced write. */
const MAX_WRITE = 1 << 20;
/** Queued messages above which reading waits for our writes (back-pressure during a flood). */
const WRITE_BACKLOG = 256;

/** A session's connection: framing reader and coalescing writer over one `BgpConn`. */
export class WireConn {
  readonly conn: BgpConn;
  /** True when we dialled it (RFC 4271 §6.8 needs the direction). */
  readonly outgoing: boolean;
  /** Codec context: the default until the OPEN exchange negotiates the session's. */
  ctx: CodecContext = defaultCodecContext;

  #h: WireHandler;
  #attached = true;
  #buf: Uint8Array | null = null;
  #start = 0;
  #end = 0;
  #draining = false;
  #drainWaiters: Array<() => void> = [];
  #queue: Uint8Array[] = [];
  #busy: Promise<void> | null = null;

  /** `initial`: bytes already read past the peer's OPEN (collision hand-over). */
  constructor(conn: BgpConn, outgoing: boolean, h: WireHandler, initial?: Uint8Array) {
    this.conn = conn;
    this.outgoing = outgoing;
    this.#h = h;
    if (initial?.length) this.#append(initial);
  }

  /** False once the session dropped this connection: nothing more reaches the handler. */
  get attached(): boolean {
    return this.#attached;
  }

  /** Messages queued and not yet written. */
  get backlog(): number {
    return this.#queue.length;
  }

  /** Start the read loop. */
  start(): void {
    this.#readLoop();
  }

  /** Queue one encoded message; false when the connection is no longer attached. */
  send(bytes: Uint8Array): boolean {
    if (!this.#attached) return false;
    this.#queue.push(bytes);
    if (!this.#busy) this.#busy = this.#pump();
    return true;
  }

  /** Resolves when what is queued now has been written (or writing failed). */
  flushed(): Promise<void> {
    return this.#busy ?? Promise.resolve();
  }

  /**
   * Detach from the session and close the socket once the queued messages (e.g. the
   * NOTIFICATION just queued) are written. Resolves when closed.
   */
  close(): Promise<void> {
    this.#detach();
    if (!this.#busy) {
      safeClose(this.conn);
      return Promise.resolve();
    }
    return this.#busy.finally(() => safeClose(this.conn));
  }

  #detach(): void {
    this.#attached = false;
    this.#draining = false;
    for (const w of this.#drainWaiters.splice(0)) w();
  }

  // ---- reading ----

  #append(b: Uint8Array): void {
    this.#reserve(b.length);
    this.#buf!.set(b, this.#end);
    this.#end += b.length;
  }

  /** Make room for `room` more octets after the buffered ones (compacting, or growing). */
  #reserve(room: number): Uint8Array {
    const buf = this.#buf ??= new Uint8Array(Math.max(INITIAL_BUFFER, room));
    if (this.#end + room <= buf.length) return buf;
    const live = this.#end - this.#start;
    const nb = live + room > buf.length ? new Uint8Array(Math.max(buf.length * 2, live + room)) : buf;
    nb.set(buf.subarray(this.#start, this.#end), 0);
    this.#buf = nb;
    this.#start = 0;
    this.#end = live;
    return nb;
  }

  /**
   * Read into the receive buffer itself (no separate chunk), process it in time slices
   * (`#kickDrain`, yielding between slices so timers and other sessions keep running during a
   * full-table load or a flood), then read again.
   */
  async #readLoop(): Promise<void> {
    const conn = this.conn;
    // Process anything that arrived with the connection (collision hand-over).
    if (this.#end > this.#start) {
      await Promise.resolve();
      if (!this.#attached) return;
      this.#kickDrain();
    }
    let room = INITIAL_BUFFER;
    for (;;) {
      const buf = this.#reserve(room);
      const free = buf.length - this.#end;
      let n: number | null;
      try {
        n = await conn.read(buf.subarray(this.#end));
      } catch (err) {
        if (this.#attached) this.#h.failed(`read: ${errMsg(err)}`);
        return;
      }
      if (!this.#attached) return;
      if (n === null) {
        // Process what is still buffered before reporting the close.
        await this.#drained();
        if (this.#attached) this.#h.failed("connection closed by peer");
        return;
      }
      this.#end += n;
      // A read that filled all the room says more is waiting: ask for more room next time.
      room = n === free ? Math.min(free * 2, MAX_READ) : INITIAL_BUFFER / 2;
      this.#kickDrain();
      // Read on only once the backlog is processed: TCP back-pressure then lets the sender batch
      // (BIRD sends far fuller UPDATEs to a receiver whose window fills than to one that never
      // lets it), while the slices keep timers and other sessions running meanwhile.
      if (this.#draining) await this.#drained();
      if (!this.#attached) return;
      // Back-pressure: let our own writes progress during a flood.
      if (this.#queue.length > WRITE_BACKLOG) await this.#busy;
    }
  }

  /** Resolves when the buffer has been processed (or the connection was dropped). */
  #drained(): Promise<void> {
    if (!this.#draining) return Promise.resolve();
    return new Promise((r) => this.#drainWaiters.push(r));
  }

  #kickDrain(): void {
    if (this.#draining) return;
    this.#draining = true;
    const slice = () => {
      if (!this.#attached) return; // dropped: #detach already released the waiters
      const more = this.#drain(performance.now() + DRAIN_SLICE_MS);
      this.#h.sliceDone();
      if (more && this.#attached) {
        setTimeout(slice, 0);
        return;
      }
      this.#draining = false;
      for (const w of this.#drainWaiters.splice(0)) w();
    };
    slice();
  }

  /** Process buffered messages until none is complete or `deadline`; true when stopped by the deadline. */
  #drain(deadline: number): boolean {
    while (this.#attached) {
      if (performance.now() > deadline) return true;
      const view = this.#buf!.subarray(this.#start, this.#end);
      const f = frameMessage(view, this.ctx);
      if (f.kind === "need-more") break;
      if (f.kind === "error") {
        this.#h.headerError(f.error);
        return false;
      }
      this.#start += f.length;
      try {
        this.#h.message(view.subarray(0, f.length));
      } catch (err) {
        this.#h.internalError(err);
        return false;
      }
    }
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return false;
  }

  // ---- writing ----

  async #pump(): Promise<void> {
    try {
      while (this.#queue.length) {
        // Coalesce queued messages into one write of up to 1 MiB.
        let total = 0, n = 0;
        while (n < this.#queue.length && total < MAX_WRITE) total += this.#queue[n++].length;
        const parts = this.#queue.splice(0, n);
        const buf = n === 1 ? parts[0] : concat(parts, total);
        let off = 0;
        while (off < buf.length) off += await this.conn.write(buf.subarray(off));
      }
    } catch (err) {
      this.#queue.length = 0;
      this.#busy = null;
      if (this.#attached) this.#h.failed(`write: ${errMsg(err)}`);
    } finally {
      this.#busy = null;
    }
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

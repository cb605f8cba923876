/**
 * Opening and refusing connections to a peer, below the session's decisions: dialling with a
 * timeout, reading the OPEN of a second connection (RFC 4271 §6.8 collision handling needs it
 * before choosing), refusing a connection with a NOTIFICATION. No session state in here.
 *
 * @module
 */

import type { PeerConfig } from "./config.ts";
import { defaultCodecContext, MessageType, type OpenMessage } from "./codec/types.ts";
import type { Notify } from "./fsm.ts";
import { addrBytes, canonicalAddr } from "./prefix.ts";
import { type BgpConn, connectTcp } from "./transport/mod.ts";
import { decodeMessage, encodeMessage, frameMessage } from "./wire.ts";

/** How long a dial may take before it counts as failed. */
const DIAL_TIMEOUT_MS = 10_000;

/** Strip the IPv4-mapped form an IPv6 listener reports, then canonicalise. */
export function normaliseRemote(a: string): string {
  const s = a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
  return addrBytes(s) ? canonicalAddr(s) : s;
}

/** Dial the peer (local address, TTL, MD5 from its config); `ac` cancels, a timeout aborts it. */
export async function dialPeer(cfg: PeerConfig, ac: AbortController): Promise<BgpConn> {
  const timeout = setTimeout(() => ac.abort(new Error("connect timed out")), DIAL_TIMEOUT_MS);
  try {
    return await connectTcp({
      hostname: cfg.address,
      port: cfg.port ?? 179,
      localAddress: cfg.localAddress,
      password: cfg.password,
      ttl: cfg.multihopTtl,
      signal: ac.signal,
    });
  } finally {
    clearTimeout(timeout);
  }
}

/** Write all of `bytes`. */
export async function writeAll(conn: BgpConn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/**
 * On a second connection: send `ourOpen` first when given (on a connection we dialled the peer
 * needs it to decide), then read the peer's OPEN. Throws when none arrives in time or the first
 * message is not a valid OPEN. `rest` is what arrived after the OPEN.
 */
export async function readPeerOpen(
  conn: BgpConn,
  ourOpen: OpenMessage | undefined,
  timeoutMs = DIAL_TIMEOUT_MS,
): Promise<{ open: OpenMessage; rest: Uint8Array }> {
  if (ourOpen) await writeAll(conn, encodeMessage(ourOpen, defaultCodecContext));
  const first = await readFirstMessage(conn, timeoutMs);
  if (!first) throw new Error("no OPEN on the second connection");
  const dec = decodeMessage(first.msg, defaultCodecContext);
  if (!dec.ok || dec.msg.type !== MessageType.Open) throw new Error("first message is not a valid OPEN");
  return { open: dec.msg, rest: first.rest };
}

/** Send a NOTIFICATION on a connection we refuse, then close it. */
export async function rejectConn(conn: BgpConn, n: Notify): Promise<void> {
  try {
    await writeAll(
      conn,
      encodeMessage({
        type: MessageType.Notification,
        code: n.code,
        subcode: n.subcode,
        data: n.data ?? new Uint8Array(),
      }, defaultCodecContext),
    );
  } catch {
    // the peer may already be gone
  } finally {
    safeClose(conn);
  }
}

/** Close, ignoring a connection that is already closed. */
export function safeClose(c: BgpConn): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

/** An error's message. */
export function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Read exactly one message from a fresh connection (collision handling), with a timeout. */
async function readFirstMessage(
  conn: BgpConn,
  timeoutMs: number,
): Promise<{ msg: Uint8Array; rest: Uint8Array } | null> {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(4096);
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(chunk),
      new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), deadline - performance.now())),
    ]);
    clearTimeout(timer);
    if (n === "timeout" || n === null) return null;
    const nb = new Uint8Array(buf.length + n);
    nb.set(buf);
    nb.set(chunk.subarray(0, n), buf.length);
    buf = nb;
    const f = frameMessage(buf, defaultCodecContext);
    if (f.kind === "error") return null;
    if (f.kind === "message") return { msg: buf.subarray(0, f.length), rest: buf.slice(f.length) };
  }
  return null;
}

/**
 * `decode` and `encode` for every message type, and `MessageReader`, which turns a TCP byte
 * stream into decoded messages.
 *
 * @module
 */

import type { AttributeCache } from "./attr_cache.ts";
import { type BgpError, headerError, HeaderSubcode } from "./errors.ts";
import { frame, HEADER_LENGTH, maxMessageLength, writeHeader } from "./header.ts";
import { decodeNotification, encodeNotification } from "./notification.ts";
import { decodeOpen, encodeOpen } from "./open.ts";
import { decodeRouteRefresh, encodeRouteRefresh } from "./route_refresh.ts";
import { type BgpMessage, type CodecContext, MessageType } from "./types.ts";
import { decodeUpdate, encodeUpdate } from "./update.ts";

/**
 * Result of `decode`. On success `length` is the octets consumed; `errors` lists non-fatal
 * problems (RFC 7606 treat-as-withdraw / attribute-discard) for logging. On failure `error`
 * carries the NOTIFICATION to send, and `length` is the message length when the header was sound.
 */
export type DecodeResult =
  | { ok: true; msg: BgpMessage; length: number; errors?: BgpError[] }
  | { ok: false; error: BgpError; length?: number };

/** Options of `decode`. */
export interface DecodeOptions {
  /** Share decoded attribute sets between UPDATEs with identical attribute bytes (results are frozen). */
  attrCache?: AttributeCache;
}

/**
 * Decodes the message at the start of `bytes` (header included). Never throws on any input: a
 * truncated message is a Bad Message Length error. Bytes after the message are ignored.
 */
export function decode(bytes: Uint8Array, ctx: CodecContext, opts: DecodeOptions = {}): DecodeResult {
  const f = frame(bytes, ctx);
  if (f.kind === "error") return { ok: false, error: f.error };
  if (f.kind === "need-more") {
    const declared = bytes.length >= HEADER_LENGTH ? (bytes[16] << 8) | bytes[17] : -1;
    return {
      ok: false,
      error: headerError(
        HeaderSubcode.BadMessageLength,
        declared >= 0
          ? `message: ${bytes.length} octets given but the header says ${declared}`
          : `message: ${bytes.length} octets given, a header needs 19`,
        declared >= 0 ? bytes.slice(16, 18) : undefined,
      ),
    };
  }
  const length = f.length;
  const b = bytes.length === length ? bytes : bytes.subarray(0, length);
  switch (f.type) {
    case MessageType.Open: {
      const r = decodeOpen(b);
      return r.ok ? { ok: true, msg: r.msg, length } : { ok: false, error: r.error, length };
    }
    case MessageType.Update: {
      const r = decodeUpdate(b, ctx, opts.attrCache);
      if (!r.ok) return { ok: false, error: r.error, length };
      return r.errors.length
        ? { ok: true, msg: r.msg, length, errors: r.errors }
        : { ok: true, msg: r.msg, length };
    }
    case MessageType.Notification:
      return { ok: true, msg: decodeNotification(b), length };
    case MessageType.Keepalive:
      return { ok: true, msg: { type: MessageType.Keepalive }, length };
    default: {
      const r = decodeRouteRefresh(b);
      return r.ok ? { ok: true, msg: r.msg, length } : { ok: false, error: r.error, length };
    }
  }
}

/**
 * Encodes a message. Throws (TypeError/RangeError) only for a message object that cannot be
 * valid, e.g. an unparsable address or an UPDATE larger than the session allows.
 */
export function encode(msg: BgpMessage, ctx: CodecContext): Uint8Array {
  switch (msg.type) {
    case MessageType.Open:
      return encodeOpen(msg);
    case MessageType.Update:
      return encodeUpdate(msg, ctx);
    case MessageType.Notification:
      return encodeNotification(msg, maxMessageLength(MessageType.Notification, ctx));
    case MessageType.Keepalive: {
      const out = new Uint8Array(HEADER_LENGTH);
      writeHeader(out, HEADER_LENGTH, MessageType.Keepalive);
      return out;
    }
    case MessageType.RouteRefresh:
      return encodeRouteRefresh(msg);
  }
}

/** The NOTIFICATION message object for a decode error. */
export function notificationFor(e: BgpError): BgpMessage {
  return { type: MessageType.Notification, code: e.code, subcode: e.subcode, data: e.data };
}

/**
 * Accumulates bytes read from a connection and yields decoded messages. `next` returns null when
 * more bytes are needed; after an error result the stream is out of sync and must be closed
 * (a decode error inside a well-framed message is still reported with its `length`).
 */
export class MessageReader {
  #buf = new Uint8Array(8192);
  #start = 0;
  #end = 0;

  /** Appends a chunk (copied). */
  push(chunk: Uint8Array): void {
    const n = chunk.length;
    if (this.#end + n > this.#buf.length) {
      const live = this.#end - this.#start;
      if (live + n <= this.#buf.length && this.#start > 0) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        let cap = this.#buf.length;
        while (cap < live + n) cap *= 2;
        const next = new Uint8Array(cap);
        next.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = next;
      }
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += n;
  }

  /** Octets buffered and not yet returned as messages. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** The next message, or null when more bytes are needed. */
  next(ctx: CodecContext, opts?: DecodeOptions): DecodeResult | null {
    const view = this.#buf.subarray(this.#start, this.#end);
    const f = frame(view, ctx);
    if (f.kind === "need-more") return null;
    if (f.kind === "error") return { ok: false, error: f.error };
    const r = decode(view.subarray(0, f.length), ctx, opts);
    this.#start += f.length;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return r;
  }
}

/**
 * NOTIFICATION (RFC 4271 §4.5). Never answered with an error of its own (§6.4), so decoding only
 * splits code, subcode and data.
 *
 * @module
 */

import { HEADER_LENGTH, writeHeader } from "./header.ts";
import { MessageType, type NotificationMessage } from "./types.ts";

/** Decodes a whole NOTIFICATION message (`b` holds exactly the message). */
export function decodeNotification(b: Uint8Array): NotificationMessage {
  return { type: MessageType.Notification, code: b[19], subcode: b[20], data: b.slice(21) };
}

/** Encodes a NOTIFICATION message. */
export function encodeNotification(m: NotificationMessage, maxLength: number): Uint8Array {
  const len = HEADER_LENGTH + 2 + m.data.length;
  if (len > maxLength) throw new RangeError(`NOTIFICATION: ${len} octets exceeds ${maxLength}`);
  const out = new Uint8Array(len);
  writeHeader(out, len, MessageType.Notification);
  out[19] = m.code;
  out[20] = m.subcode;
  out.set(m.data, 21);
  return out;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8e = new TextEncoder();

/**
 * The shutdown communication of a Cease / Administrative Shutdown or Administrative Reset
 * NOTIFICATION (RFC 9003 §2: a length octet, then that many octets of UTF-8); undefined when
 * there is none or it is malformed (RFC 9003 §4: then it is ignored).
 */
export function shutdownCommunication(m: NotificationMessage): string | undefined {
  if (m.code !== 6 || (m.subcode !== 2 && m.subcode !== 4) || m.data.length < 1) return undefined;
  const len = m.data[0];
  if (len === 0 || len + 1 > m.data.length) return undefined;
  try {
    return utf8.decode(m.data.subarray(1, 1 + len));
  } catch {
    return undefined;
  }
}

/**
 * A Cease NOTIFICATION (subcode 2 Administrative Shutdown or 4 Administrative Reset) carrying a
 * shutdown communication, truncated on a character boundary to RFC 9003's 255 octets.
 */
export function ceaseWithCommunication(subcode: 2 | 4, text: string): NotificationMessage {
  let bytes = utf8e.encode(text);
  if (bytes.length > 255) {
    let end = 255;
    while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--; // do not split a UTF-8 sequence
    bytes = bytes.subarray(0, end);
  }
  const data = new Uint8Array(1 + bytes.length);
  data[0] = bytes.length;
  data.set(bytes, 1);
  return { type: MessageType.Notification, code: 6, subcode, data };
}

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

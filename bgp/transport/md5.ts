/**
 * `struct tcp_md5sig` (linux/tcp.h) for `setsockopt(IPPROTO_TCP, TCP_MD5SIG)`, RFC 2385:
 *
 * ```
 * struct tcp_md5sig {
 *   struct sockaddr_storage tcpm_addr;  //   0, 128 bytes: the peer (port ignored)
 *   __u8  tcpm_flags;                   // 128, only read with TCP_MD5SIG_EXT
 *   __u8  tcpm_prefixlen;               // 129, only read with TCP_MD5SIG_EXT
 *   __u16 tcpm_keylen;                  // 130, 0 deletes the key for that address
 *   int   tcpm_ifindex;                 // 132, only read with TCP_MD5SIG_EXT
 *   __u8  tcpm_key[80];                 // 136
 * };                                    // 216 bytes
 * ```
 *
 * @module
 */
import { encodeSockaddr, type IpAddr } from "./sockaddr.ts";

/** TCP_MD5SIG_MAXKEYLEN. */
export const MD5_MAX_KEY = 80;
/** sizeof(struct tcp_md5sig). */
export const MD5SIG_SIZE = 216;

/**
 * Encodes the option value that installs (or, with `key` null, deletes) the MD5 key for `peer`.
 * Throws RangeError when the key is longer than the kernel's 80 bytes.
 */
export function encodeMd5Sig(peer: IpAddr, key: string | null): Uint8Array {
  const out = new Uint8Array(MD5SIG_SIZE);
  encodeSockaddr(peer, 0, 0, out.subarray(0, 128));
  if (key === null) return out;
  const k = new TextEncoder().encode(key);
  if (k.length > MD5_MAX_KEY) {
    throw new RangeError(`TCP MD5 password is ${k.length} bytes; the kernel accepts at most ${MD5_MAX_KEY}`);
  }
  new DataView(out.buffer).setUint16(130, k.length, true);
  out.set(k, 136);
  return out;
}

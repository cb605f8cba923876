/**
 * Capabilities (RFC 5492) inside the OPEN Capabilities optional parameter: MP (RFC 4760 §8),
 * route refresh (RFC 2918), extended message (RFC 8654), graceful restart (RFC 4724 §3),
 * 4-octet AS (RFC 6793 §3). Anything else, or a known code whose value does not have the expected
 * shape, is kept raw as `kind: "unknown"` so it survives a round trip and can be logged.
 *
 * @module
 */

import type { ByteWriter } from "./bytes.ts";
import { type BgpError, openError, OpenSubcode } from "./errors.ts";
import { AFI, type Afi, type AfiSafi, type Capability, SAFI } from "./types.ts";

/** Capability codes this codec interprets. */
export const CapabilityCode = {
  Multiprotocol: 1,
  RouteRefresh: 2,
  ExtendedMessage: 6,
  GracefulRestart: 64,
  FourOctetAs: 65,
} as const;

function knownFamily(afi: number, safi: number): boolean {
  return (afi === AFI.IPv4 || afi === AFI.IPv6) && safi === SAFI.Unicast;
}

function decodeOne(code: number, b: Uint8Array, s: number, len: number): Capability {
  const unknown = (): Capability => ({ code, kind: "unknown", value: b.slice(s, s + len) });
  switch (code) {
    case CapabilityCode.Multiprotocol: {
      if (len !== 4 || b[s + 2] !== 0) return unknown();
      const afi = (b[s] << 8) | b[s + 1];
      const safi = b[s + 3];
      if (!knownFamily(afi, safi)) return unknown();
      return { code: 1, kind: "multiprotocol", afi: afi as Afi, safi: SAFI.Unicast };
    }
    case CapabilityCode.RouteRefresh:
      return len === 0 ? { code: 2, kind: "route-refresh" } : unknown();
    case CapabilityCode.ExtendedMessage:
      return len === 0 ? { code: 6, kind: "extended-message" } : unknown();
    case CapabilityCode.GracefulRestart: {
      // RFC 4724 §3: Restart Flags (4 bits) + Restart Time (12 bits), then <AFI, SAFI, flags> tuples.
      if (len < 2 || (len - 2) % 4 !== 0) return unknown();
      const hi = b[s];
      if (hi & 0x30) return unknown(); // reserved flag bits set: keep raw to round-trip
      const families: Array<AfiSafi & { forwardingPreserved: boolean }> = [];
      for (let p = s + 2; p < s + len; p += 4) {
        const afi = (b[p] << 8) | b[p + 1];
        const safi = b[p + 2];
        const f = b[p + 3];
        if (!knownFamily(afi, safi) || (f & 0x7f) !== 0) return unknown();
        families.push({ afi: afi as Afi, safi: SAFI.Unicast, forwardingPreserved: (f & 0x80) !== 0 });
      }
      return {
        code: 64,
        kind: "graceful-restart",
        restarting: (hi & 0x80) !== 0,
        notification: (hi & 0x40) !== 0,
        restartTime: ((hi & 0x0f) << 8) | b[s + 1],
        families,
      };
    }
    case CapabilityCode.FourOctetAs:
      if (len !== 4) return unknown();
      return {
        code: 65,
        kind: "four-octet-as",
        asn: ((b[s] << 24) | (b[s + 1] << 16) | (b[s + 2] << 8) | b[s + 3]) >>> 0,
      };
    default:
      return unknown();
  }
}

/**
 * Decodes the capabilities in `b[start, end)` (the value of one Capabilities parameter) into
 * `out`; returns a BgpError when a capability overruns the parameter.
 */
export function decodeCapabilities(
  b: Uint8Array,
  start: number,
  end: number,
  out: Capability[],
): BgpError | null {
  let p = start;
  while (p < end) {
    if (p + 2 > end) {
      return openError(
        OpenSubcode.Unspecific,
        `OPEN capabilities: truncated capability header at offset ${p}`,
      );
    }
    const code = b[p];
    const len = b[p + 1];
    if (p + 2 + len > end) {
      return openError(
        OpenSubcode.Unspecific,
        `OPEN capabilities: capability ${code} length ${len} overruns its parameter (${
          end - p - 2
        } octets left)`,
      );
    }
    out.push(decodeOne(code, b, p + 2, len));
    p += 2 + len;
  }
  return null;
}

/** Writes one capability (code, length, value). */
export function encodeCapability(w: ByteWriter, c: Capability): void {
  switch (c.kind) {
    case "multiprotocol":
      w.u8(1);
      w.u8(4);
      w.u16(c.afi);
      w.u8(0);
      w.u8(c.safi);
      return;
    case "route-refresh":
    case "extended-message":
      w.u8(c.code);
      w.u8(0);
      return;
    case "graceful-restart": {
      w.u8(64);
      w.u8(2 + 4 * c.families.length);
      const t = c.restartTime & 0x0fff;
      w.u8((c.restarting ? 0x80 : 0) | (c.notification ? 0x40 : 0) | (t >> 8));
      w.u8(t & 255);
      for (const f of c.families) {
        w.u16(f.afi);
        w.u8(f.safi);
        w.u8(f.forwardingPreserved ? 0x80 : 0);
      }
      return;
    }
    case "four-octet-as":
      w.u8(65);
      w.u8(4);
      w.u32(c.asn);
      return;
    case "unknown":
      if (c.value.length > 255) {
        throw new RangeError(`capability ${c.code}: value of ${c.value.length} octets exceeds 255`);
      }
      w.u8(c.code);
      w.u8(c.value.length);
      w.bytes(c.value);
      return;
  }
}

/**
 * OPEN (RFC 4271 §4.2) with optional parameters in the classic and the RFC 9072 extended form,
 * and the context-free checks of RFC 4271 §6.2. Checks that need configuration (peer AS, our
 * BGP identifier) live in `validate.ts`.
 *
 * @module
 */

import { ByteWriter } from "./bytes.ts";
import { decodeCapabilities, encodeCapability } from "./capabilities.ts";
import { type BgpError, openError, OpenSubcode } from "./errors.ts";
import { HEADER_LENGTH, writeHeader } from "./header.ts";
import { formatIPv4, parseIPv4 } from "./ip.ts";
import { type Capability, MessageType, type OpenMessage } from "./types.ts";

/** The only BGP version spoken. */
export const BGP_VERSION = 4;
/** Optional parameter type carrying capabilities (RFC 5492). */
const PARAM_CAPABILITIES = 2;
/** RFC 9072: Non-Ext OP Type marking the extended form. */
const PARAM_EXTENDED = 255;

/** Decodes a whole OPEN message (`b` starts at the header and holds exactly the message). */
export function decodeOpen(b: Uint8Array): { ok: true; msg: OpenMessage } | { ok: false; error: BgpError } {
  const len = b.length;
  const version = b[19];
  // RFC 4271 §6.2: unsupported version → subcode 1, data = the largest version we support (2 octets).
  if (version !== BGP_VERSION) {
    return {
      ok: false,
      error: openError(
        OpenSubcode.UnsupportedVersionNumber,
        `OPEN: version ${version} is not supported; only 4 is`,
        new Uint8Array([0, BGP_VERSION]),
      ),
    };
  }
  const myAs = (b[20] << 8) | b[21];
  const holdTime = (b[22] << 8) | b[23];
  const routerId = formatIPv4(b, 24);
  // RFC 7607 §2: AS 0 in the My AS field is Bad Peer AS.
  if (myAs === 0) {
    return { ok: false, error: openError(OpenSubcode.BadPeerAs, "OPEN: My AS 0 is not a valid AS number") };
  }
  // RFC 4271 §6.2: hold time 1 or 2 seconds is unacceptable (0 or ≥3 are fine).
  if (holdTime === 1 || holdTime === 2) {
    return {
      ok: false,
      error: openError(
        OpenSubcode.UnacceptableHoldTime,
        `OPEN: hold time ${holdTime} s is not 0 or at least 3`,
      ),
    };
  }
  // RFC 6286 §2.2: the BGP identifier is a non-zero 32-bit value.
  if (b[24] === 0 && b[25] === 0 && b[26] === 0 && b[27] === 0) {
    return {
      ok: false,
      error: openError(OpenSubcode.BadBgpIdentifier, "OPEN: BGP identifier 0.0.0.0 is invalid"),
    };
  }
  const optLen = b[28];
  let p = HEADER_LENGTH + 10;
  let end: number;
  let extended = false;
  // RFC 9072 §2: Opt Parm Len 255 with a first parameter type of 255 announces the extended form.
  if (optLen === 255 && len > p && b[p] === PARAM_EXTENDED) {
    if (len < p + 3) {
      return {
        ok: false,
        error: openError(OpenSubcode.Unspecific, "OPEN: extended optional parameters length truncated"),
      };
    }
    const extLen = (b[p + 1] << 8) | b[p + 2];
    p += 3;
    end = p + extLen;
    extended = true;
  } else {
    end = p + optLen;
  }
  if (end !== len) {
    return {
      ok: false,
      error: openError(
        OpenSubcode.Unspecific,
        `OPEN: optional parameters end at octet ${end} but the message is ${len} octets`,
      ),
    };
  }
  const capabilities: Capability[] = [];
  const perParam: number[] = [];
  const hdr = extended ? 3 : 2;
  let classicLen = 0;
  let longParam = false;
  while (p < end) {
    if (p + hdr > end) {
      return {
        ok: false,
        error: openError(OpenSubcode.Unspecific, `OPEN: truncated optional parameter at octet ${p}`),
      };
    }
    const type = b[p];
    const plen = extended ? (b[p + 1] << 8) | b[p + 2] : b[p + 1];
    const vs = p + hdr;
    if (vs + plen > end) {
      return {
        ok: false,
        error: openError(
          OpenSubcode.Unspecific,
          `OPEN: optional parameter ${type} length ${plen} overruns the message`,
        ),
      };
    }
    if (type !== PARAM_CAPABILITIES) {
      // RFC 4271 §6.2: an optional parameter we do not recognise → Unsupported Optional Parameter.
      return {
        ok: false,
        error: openError(
          OpenSubcode.UnsupportedOptionalParameter,
          `OPEN: optional parameter type ${type} is not supported; only 2 (capabilities) is`,
        ),
      };
    }
    const before = capabilities.length;
    const err = decodeCapabilities(b, vs, vs + plen, capabilities);
    if (err) return { ok: false, error: err };
    perParam.push(capabilities.length - before);
    classicLen += 2 + plen;
    if (plen > 255) longParam = true;
    p = vs + plen;
  }
  const msg: OpenMessage = { type: MessageType.Open, version, myAs, holdTime, routerId, capabilities };
  // Record the layout only when it is not what encodeOpen writes by default.
  const canonicalGrouping = capabilities.length === 0 ? perParam.length === 0 : perParam.length === 1;
  const defaultExtended = classicLen > 255 || longParam;
  if (!canonicalGrouping || (extended && !defaultExtended)) {
    msg.layout = { capabilitiesPerParameter: perParam, extendedLength: extended };
  }
  return { ok: true, msg };
}

/** Encodes an OPEN message. Throws TypeError/RangeError on a malformed message object. */
export function encodeOpen(m: OpenMessage): Uint8Array {
  const rid = parseIPv4(m.routerId);
  if (rid < 0) {
    throw new TypeError(`OPEN routerId ${JSON.stringify(m.routerId)}: must be dotted-quad IPv4 text`);
  }
  // Group capabilities into parameters.
  let groups: Capability[][];
  const layout = m.layout;
  if (layout && layout.capabilitiesPerParameter.reduce((a, n) => a + n, 0) === m.capabilities.length) {
    groups = [];
    let i = 0;
    for (const n of layout.capabilitiesPerParameter) {
      groups.push(m.capabilities.slice(i, i + n));
      i += n;
    }
  } else {
    groups = m.capabilities.length ? [m.capabilities] : [];
  }
  const params = groups.map((g) => {
    const w = new ByteWriter(64);
    for (const c of g) encodeCapability(w, c);
    return w.finish();
  });
  const classicLen = params.reduce((a, p) => a + 2 + p.length, 0);
  const tooLongForClassic = classicLen > 255 || params.some((p) => p.length > 255);
  const extended = (layout?.extendedLength ?? false) || tooLongForClassic;
  const w = new ByteWriter(64 + classicLen);
  w.pos = HEADER_LENGTH;
  w.ensure(10);
  w.u8(m.version);
  w.u16(m.myAs);
  w.u16(m.holdTime);
  w.u32(rid);
  if (extended) {
    // RFC 9072 §2: Opt Parm Len 255, Non-Ext OP Type 255, then a 2-octet length and 2-octet parameter lengths.
    const extLen = params.reduce((a, p) => a + 3 + p.length, 0);
    w.u8(255);
    w.u8(PARAM_EXTENDED);
    w.u16(extLen);
    for (const p of params) {
      w.u8(PARAM_CAPABILITIES);
      w.u16(p.length);
      w.bytes(p);
    }
  } else {
    w.u8(classicLen);
    for (const p of params) {
      w.u8(PARAM_CAPABILITIES);
      w.u8(p.length);
      w.bytes(p);
    }
  }
  const out = w.finish();
  if (out.length > 4096) throw new RangeError(`OPEN: ${out.length} octets exceeds 4096`);
  writeHeader(out, out.length, MessageType.Open);
  return out;
}

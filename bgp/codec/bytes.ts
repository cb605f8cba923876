/**
 * A growable byte writer for the encoders: one backing buffer, DataView writes, no per-field
 * allocation.
 *
 * @module
 */

/** Appends big-endian integers and byte strings to a buffer that grows by doubling. */
export class ByteWriter {
  /** Backing buffer (valid up to `pos`). */
  buf: Uint8Array;
  /** DataView over `buf`. */
  view: DataView;
  /** Write position. */
  pos = 0;

  /** A writer with `capacity` octets reserved. */
  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Appends one octet. */
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  /** Appends a big-endian 16-bit value. */
  u16(v: number): void {
    this.ensure(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }

  /** Appends a big-endian 32-bit value. */
  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, v >>> 0);
    this.pos += 4;
  }

  /** Appends a byte string. */
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Overwrites a 16-bit field written earlier (length fields known only afterwards). */
  patch16(at: number, v: number): void {
    this.view.setUint16(at, v);
  }

  /** Overwrites an 8-bit field written earlier. */
  patch8(at: number, v: number): void {
    this.buf[at] = v;
  }

  /** The bytes written so far, as an exact-size copy. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** A DataView over exactly `b` (which may be a subarray). */
export function viewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Byte-wise equality. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lower-case hex of `b` (fixtures and logs). */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, "0");
  return s;
}

/** Bytes of a hex string (whitespace ignored); null when it is not hex. */
export function fromHex(hex: string): Uint8Array | null {
  const h = hex.replace(/\s+/g, "");
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) return null;
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * The restore script that replaces set contents without ever emptying a live set: new sets are
 * created and filled under temporary names, swapped into place, and the old contents (now under
 * the temporary name) destroyed. Sets that do not exist yet are created directly.
 *
 * Order matters for failure: every create and fill comes first, swaps after, so a script that
 * fails while filling leaves every live set as it was (only temporary sets linger, and the next
 * script destroys them first).
 *
 * @module
 */
import { sha256 } from "../sha256.ts";
import type { IpSet } from "./save.ts";

/** A set's desired definition. */
export interface DesiredSet {
  name: string;
  type: string;
  /** Create options, e.g. `["family", "inet", "hashsize", "1024", "maxelem", "65536"]`. */
  options: string[];
  entries: readonly string[];
}

/** RFC 4648 base32 without padding. */
export function base32(bytes: Uint8Array): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/** Default temporary name for a set: `TMP-` + 16 base32 chars of sha256(name), 20 chars. */
export function defaultTempName(name: string): string {
  return "TMP-" + base32(sha256(name)).slice(0, 16);
}

export interface SwapScriptInput {
  /** Sets to create or replace. */
  sets: readonly DesiredSet[];
  /** Names of sets that exist now, with their type (a different type cannot be swapped). */
  existing: ReadonlyMap<string, { type: string; family?: string }>;
  /** Sets to destroy at the end (must be unreferenced by then). */
  destroy?: readonly string[];
  /** Temporary name for a set (default `defaultTempName`); must be ≤ 31 chars. */
  tempName?: (name: string) => string;
}

function familyOf(options: readonly string[]): string {
  const i = options.indexOf("family");
  return i >= 0 ? options[i + 1] : "inet";
}

/** Renders one `ipset restore` script replacing the given sets. */
export function renderSwapScript(input: SwapScriptInput): string {
  const temp = input.tempName ?? defaultTempName;
  const head: string[] = [];
  const fill: string[] = [];
  const swaps: string[] = [];
  const tail: string[] = [];
  for (const s of input.sets) {
    const have = input.existing.get(s.name);
    const compatible = have && have.type === s.type &&
      (have.family === undefined || have.family === familyOf(s.options));
    if (!have) {
      fill.push(["create", s.name, s.type, ...s.options].join(" "));
      for (const e of s.entries) fill.push(`add ${s.name} ${e}`);
      continue;
    }
    const tmp = temp(s.name);
    if (input.existing.has(tmp)) head.push(`destroy ${tmp}`);
    if (!compatible) {
      // A set of another type cannot be swapped: destroy and recreate (fails if referenced).
      head.push(`destroy ${s.name}`);
      fill.push(["create", s.name, s.type, ...s.options].join(" "));
      for (const e of s.entries) fill.push(`add ${s.name} ${e}`);
      continue;
    }
    fill.push(["create", tmp, s.type, ...s.options].join(" "));
    for (const e of s.entries) fill.push(`add ${tmp} ${e}`);
    swaps.push(`swap ${tmp} ${s.name}`);
    tail.push(`destroy ${tmp}`);
  }
  for (const name of input.destroy ?? []) tail.push(`destroy ${name}`);
  const lines = [...head, ...fill, ...swaps, ...tail];
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

/** The `DesiredSet` form of a parsed set. */
export function desiredFromSave(s: IpSet): DesiredSet {
  return { name: s.name, type: s.type, options: s.options, entries: s.entries };
}

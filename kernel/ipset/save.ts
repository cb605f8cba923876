/**
 * `ipset save` parser and `ipset restore` renderer; they round-trip (create options are kept as
 * the kernel printed them, entries in order with their per-entry options such as `nomatch`).
 *
 * @module
 */

/** One set as `ipset save` prints it. */
export interface IpSet {
  name: string;
  /** e.g. `hash:ip`, `hash:net`, `hash:ip,port`. */
  type: string;
  /** Create options after the type, e.g. `["family", "inet", "hashsize", "1024", ...]`. */
  options: string[];
  /** Entries as printed after `add NAME` (an address, `addr,proto:port`, `cidr nomatch`...). */
  entries: string[];
}

/** Parse failure with the offending line. */
export class IpsetParseError extends Error {
  constructor(readonly lineNumber: number, readonly line: string, reason: string) {
    super(`ipset save output line ${lineNumber}: ${reason}: ${JSON.stringify(line)}`);
    this.name = "IpsetParseError";
  }
}

/** Parses `ipset save` output. */
export function parseSave(text: string): IpSet[] {
  const sets = new Map<string, IpSet>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    const words = line.split(/\s+/);
    if (words[0] === "create") {
      if (words.length < 3) throw new IpsetParseError(i + 1, line, "create needs a name and a type");
      sets.set(words[1], { name: words[1], type: words[2], options: words.slice(3), entries: [] });
    } else if (words[0] === "add") {
      const s = sets.get(words[1]);
      if (!s) throw new IpsetParseError(i + 1, line, `add to a set not created before`);
      s.entries.push(words.slice(2).join(" "));
    } else {
      throw new IpsetParseError(i + 1, line, "expected create or add");
    }
  }
  return [...sets.values()];
}

/** Renders sets as an `ipset restore` script that creates and fills them (the inverse of `parseSave`). */
export function renderSave(sets: readonly IpSet[]): string {
  const out: string[] = [];
  for (const s of sets) {
    out.push(["create", s.name, s.type, ...s.options].join(" "));
    for (const e of s.entries) out.push(`add ${s.name} ${e}`);
  }
  return out.join("\n") + "\n";
}

/** The value of a create option (`family`, `maxelem`...), if present. */
export function setOption(set: Pick<IpSet, "options">, key: string): string | undefined {
  const i = set.options.indexOf(key);
  return i >= 0 && i + 1 < set.options.length ? set.options[i + 1] : undefined;
}

/** Header of one set from `ipset list -t`. */
export interface IpSetHeader {
  name: string;
  type: string;
  header: string;
  references: number;
  entries: number;
}

/** Parses `ipset list -t` (terse: headers only, cheap with big sets). */
export function parseListTerse(text: string): IpSetHeader[] {
  const out: IpSetHeader[] = [];
  let cur: Partial<IpSetHeader> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const m = /^([A-Za-z ]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const [, key, value] = m;
    if (key === "Name") {
      if (cur?.name) out.push(finish(cur));
      cur = { name: value };
    } else if (cur) {
      if (key === "Type") cur.type = value;
      else if (key === "Header") cur.header = value;
      else if (key === "References") cur.references = Number(value);
      else if (key === "Number of entries") cur.entries = Number(value);
    }
  }
  if (cur?.name) out.push(finish(cur));
  return out;
}

function finish(p: Partial<IpSetHeader>): IpSetHeader {
  return {
    name: p.name!,
    type: p.type ?? "",
    header: p.header ?? "",
    references: p.references ?? 0,
    entries: p.entries ?? 0,
  };
}

/**
 * A parser for the plain block YAML that kubeconfig files are written in (kubeadm, kubectl,
 * kind): nested mappings and sequences, one scalar per line. Anything outside that subset
 * (flow collections but `{}` and `[]`, anchors, tags, block scalars, multi-line or numeric
 * scalars, quoted keys, duplicate keys, a second document) makes it answer `undefined`, and the
 * caller hands the text to the full `yaml` package instead: where this parser answers, it
 * answers what `yaml.parse` would (`block_yaml_test.ts` checks that on mutated kubeconfigs).
 *
 * Why: the `yaml` package is the largest module the agent loads at start (~45 ms of the main
 * thread to evaluate, plus Node's `process` module it requires), and the first sync waits for
 * it while reading `--kubeconfig`.
 *
 * @module
 */

interface Line {
  indent: number;
  text: string;
}

/** Thrown inside the parser to give up; never escapes it. */
class Unsupported extends Error {}

const SPECIAL_START = /^[\[\]{}&*!|>%@`"',?#]/;
// Keys a core-schema parser reads as strings: no null, boolean or number look-alikes.
const KEY = /^[A-Za-z_][A-Za-z0-9_.\/ -]*$/;
const CORE_NUMBER =
  /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
const NON_STRING_KEY = /^(null|Null|NULL|true|True|TRUE|false|False|FALSE)$/;

/** The document, or `undefined` when the text is outside the subset (use the full parser). */
export function parseBlockYaml(text: string): unknown {
  const lines: Line[] = [];
  let started = false;
  const raws = text.split("\n");
  for (const [n, raw] of raws.entries()) {
    // CRLF line ends; a lone CR is left to the full parser.
    const line = raw.endsWith("\r") && n < raws.length - 1 ? raw.slice(0, -1) : raw;
    if (line.includes("\r") || line.includes("\t")) return undefined;
    const body = line.trimStart();
    if (body === "" || body.startsWith("#")) continue;
    if (/^(---|\.\.\.)(\s|$)/.test(line)) {
      if (started || line !== "---") return undefined;
      started = true;
      continue;
    }
    started = true;
    lines.push({ indent: line.length - body.length, text: body.trimEnd() });
  }
  if (lines.length === 0 || lines[0].indent !== 0) return undefined;
  try {
    const p = new BlockParser(lines);
    const doc = p.node(0);
    if (!p.done()) return undefined;
    return doc;
  } catch (e) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  }
}

class BlockParser {
  #i = 0;
  constructor(private readonly lines: Line[]) {}

  done(): boolean {
    return this.#i === this.lines.length;
  }

  #peek(): Line | undefined {
    return this.lines[this.#i];
  }

  /** The collection starting at the current line, which has indent `indent`. */
  node(indent: number): unknown {
    const l = this.#peek();
    if (!l || l.indent !== indent) throw new Unsupported();
    return isItem(l.text) ? this.#sequence(indent) : this.#mapping(indent);
  }

  #mapping(indent: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (let l = this.#peek(); l && l.indent === indent && !isItem(l.text); l = this.#peek()) {
      const colon = l.text.endsWith(":") ? l.text.length - 1 : l.text.indexOf(": ");
      if (colon <= 0) throw new Unsupported();
      const key = l.text.slice(0, colon);
      if (
        !KEY.test(key) || NON_STRING_KEY.test(key) || key.endsWith(" ") || key === "__proto__" ||
        Object.hasOwn(out, key)
      ) {
        throw new Unsupported();
      }
      const rest = l.text.slice(colon + 1).trimStart();
      this.#i++;
      const next = this.#peek();
      if (rest === "" || rest.startsWith("#")) {
        // A nested collection, a sequence at the key's own indent, or null.
        if (next && next.indent > indent) out[key] = this.node(next.indent);
        else if (next && next.indent === indent && isItem(next.text)) out[key] = this.#sequence(indent);
        else out[key] = null;
      } else {
        out[key] = scalar(rest);
        if (next && next.indent > indent) throw new Unsupported(); // a multi-line scalar
      }
    }
    return out;
  }

  #sequence(indent: number): unknown[] {
    const out: unknown[] = [];
    for (let l = this.#peek(); l && l.indent === indent && isItem(l.text); l = this.#peek()) {
      const after = l.text.slice(1);
      const rest = after.trimStart();
      if (rest === "" || rest.startsWith("#")) {
        this.#i++;
        const next = this.#peek();
        out.push(next && next.indent > indent ? this.node(next.indent) : null);
      } else if (isItem(rest) || /^[^'"]*?(: |:$)/.test(rest)) {
        // "- key: value" (or "- - x"): a collection whose first line starts after the dash.
        this.lines[this.#i] = { indent: indent + 1 + after.length - rest.length, text: rest };
        out.push(this.node(this.lines[this.#i].indent));
      } else {
        this.#i++;
        out.push(scalar(rest));
        const next = this.#peek();
        if (next && next.indent > indent) throw new Unsupported();
      }
    }
    return out;
  }
}

function isItem(text: string): boolean {
  return text === "-" || text.startsWith("- ");
}

/** One scalar on one line, with an optional trailing comment. */
function scalar(text: string): unknown {
  if (text.startsWith("'")) return quoted(text, "'");
  if (text.startsWith('"')) return quoted(text, '"');
  const value = stripComment(text);
  if (value === "{}") return {};
  if (value === "[]") return [];
  if (SPECIAL_START.test(value) || isItem(value) || value.includes(": ") || value.endsWith(":")) {
    throw new Unsupported();
  }
  switch (value) {
    case "":
    case "~":
    case "null":
    case "Null":
    case "NULL":
      return null;
    case "true":
    case "True":
    case "TRUE":
      return true;
    case "false":
    case "False":
    case "FALSE":
      return false;
  }
  // What the core schema reads as a number (1, -2, 0o17, 0x1f, 1.5e3, .inf, .nan) is left to the
  // full parser; anything else starting like one (a hex token, 3f9a...) is a string.
  if (CORE_NUMBER.test(value)) throw new Unsupported();
  if (/^[-+.]/.test(value)) throw new Unsupported();
  return value;
}

function stripComment(text: string): string {
  const hash = text.search(/\s#/);
  return (hash < 0 ? text : text.slice(0, hash)).trimEnd();
}

function quoted(text: string, q: "'" | '"'): string {
  let out = "";
  let i = 1;
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === q) {
      if (q === "'" && text[i + 1] === "'") {
        out += "'";
        i++;
        continue;
      }
      break;
    }
    if (q === '"' && c === "\\") {
      const e = text[++i];
      const simple: Record<string, string> = { "\\": "\\", '"': '"', "/": "/", n: "\n", t: "\t" };
      if (!(e in simple)) throw new Unsupported();
      out += simple[e];
      continue;
    }
    out += c;
  }
  if (i >= text.length) throw new Unsupported(); // unterminated on this line
  const after = text.slice(i + 1);
  if (after.trim() !== "" && !/^\s+#/.test(after)) throw new Unsupported();
  return out;
}

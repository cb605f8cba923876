/**
 * An in-memory `nft` for unit tests: a `Runner` that parses every `nft -f -` script it is given
 * (tables, chains, sets, maps, elements, rules), applies it atomically to its model or refuses
 * it the way nft does (exit 1, `/dev/stdin:LINE:COLS: Error: …`, nothing applied), and answers
 * `nft -j list tables|table|ruleset` from the model. It checks what the kernel checks for the
 * commands the controllers send: objects exist before use and are absent before `add … {}` of
 * another type, elements exist before delete, map keys are not re-added with another value, a
 * chain or set still referenced cannot be deleted.
 *
 * `lateChainRelease` models kernels before 6.2: a chain that a map element pointed at when the
 * transaction began cannot be deleted in that transaction, even if the element went.
 * `refuse` injects a refusal for lines a test picks (a fault the kernel could raise).
 *
 * @module
 */
import { ExecError, type ExecOptions, type ExecResult, type Runner } from "../exec.ts";
import { chainTargets, setRefs } from "./table.ts";

interface FakeChain {
  decl: string;
  rules: string[];
}

interface FakeSet {
  kind: "set" | "map";
  decl: string;
  elements: Map<string, string>;
}

interface FakeTable {
  family: string;
  name: string;
  chains: Map<string, FakeChain>;
  sets: Map<string, FakeSet>;
}

class Refusal extends Error {
  constructor(readonly col: [number, number], message: string) {
    super(message);
  }
}

/** Splits `a, b : c, d` at top-level commas (not inside `{ }`). */
export function splitElements(body: string): Array<{ text: string; at: number }> {
  const out: Array<{ text: string; at: number }> = [];
  let depth = 0, start = 0;
  for (let i = 0; i <= body.length; i++) {
    const ch = body[i];
    if (ch === "{") depth++;
    else if (ch === "}") depth--;
    else if ((ch === "," && depth === 0) || i === body.length) {
      const raw = body.slice(start, i);
      const text = raw.trim();
      if (text) out.push({ text, at: start + raw.indexOf(text) });
      start = i + 1;
    }
  }
  return out;
}

function cloneTables(tables: Map<string, FakeTable>): Map<string, FakeTable> {
  const out = new Map<string, FakeTable>();
  for (const [k, t] of tables) {
    out.set(k, {
      family: t.family,
      name: t.name,
      chains: new Map([...t.chains].map(([n, c]) => [n, { decl: c.decl, rules: [...c.rules] }])),
      sets: new Map(
        [...t.sets].map(([n, s]) => [n, { kind: s.kind, decl: s.decl, elements: new Map(s.elements) }]),
      ),
    });
  }
  return out;
}

/** Chains that map elements or verdict maps of `t` point at. */
function mapReferenced(t: FakeTable): Set<string> {
  const out = new Set<string>();
  for (const s of t.sets.values()) {
    for (const v of s.elements.values()) for (const c of chainTargets(v)) out.add(c);
  }
  for (const c of t.chains.values()) {
    for (const r of c.rules) {
      const vmap = /\bvmap\s*\{([^}]*)\}/.exec(r);
      if (vmap) { for (const x of chainTargets(vmap[1])) out.add(x); }
    }
  }
  return out;
}

/** The in-memory nft. */
export class FakeNft implements Runner {
  readonly tables = new Map<string, FakeTable>();
  /** Every `nft -f` script run (refused ones included). */
  readonly scripts: string[] = [];
  /** Commands as `argv.join(" ")`. */
  readonly commands: string[] = [];
  /** Model pre-6.2 kernels (see the module doc). */
  lateChainRelease = false;
  /** Returns an error message to refuse a line with (a fault injected by a test). */
  refuse?: (line: string) => string | undefined;

  run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    this.commands.push(argv.join(" "));
    if (argv[0] !== "nft") return Promise.reject(new Error(`FakeNft runs nft only, not ${argv[0]}`));
    const args = argv.slice(1);
    const check = args[0] === "-c";
    if (check) args.shift();
    if (args[0] === "-f" && args[1] === "-") {
      const script = options.stdin ?? "";
      this.scripts.push(script);
      const err = this.#execute(script, check);
      if (err) {
        const r = { code: 1, stdout: "", stderr: err };
        if ((options.okCodes ?? [0]).includes(1)) return Promise.resolve(r);
        return Promise.reject(new ExecError(argv, 1, err, script));
      }
      return Promise.resolve({ code: 0, stdout: "", stderr: "" });
    }
    if (args[0] === "-j" && args[1] === "list") {
      const what = args.slice(2);
      if (what[0] === "tables") return Promise.resolve(this.#json([...this.tables.values()], false));
      if (what[0] === "ruleset") return Promise.resolve(this.#json([...this.tables.values()], true));
      if (what[0] === "table") {
        const t = this.tables.get(`${what[1]} ${what[2]}`);
        if (!t) {
          const stderr = `Error: No such file or directory; did you mean table ‘${what[2]}’?`;
          if ((options.okCodes ?? [0]).includes(1)) return Promise.resolve({ code: 1, stdout: "", stderr });
          return Promise.reject(new ExecError(argv, 1, stderr));
        }
        return Promise.resolve(this.#json([t], true));
      }
    }
    return Promise.reject(new Error(`FakeNft does not know: nft ${args.join(" ")}`));
  }

  /** The state as text, sorted (for comparing two fakes). */
  dump(): string {
    const out: string[] = [];
    for (const t of this.tables.values()) {
      out.push(`table ${t.family} ${t.name}`);
      for (const [n, s] of t.sets) {
        out.push(
          `  ${s.kind} ${n} { ${s.decl} } = ${
            [...s.elements].map(([k, v]) => v ? `${k} : ${v}` : k).sort().join(", ")
          }`,
        );
      }
      for (const [n, c] of t.chains) {
        out.push(
          `  chain ${n} { ${c.decl} }`,
          ...c.rules.map((r) => `    ${r}`),
        );
      }
    }
    return out.join("\n");
  }

  #json(tables: FakeTable[], full: boolean): ExecResult {
    const items: unknown[] = [{ metainfo: { version: "fake", json_schema_version: 1 } }];
    let handle = 1;
    for (const t of tables) {
      items.push({ table: { family: t.family, name: t.name, handle: handle++ } });
      if (!full) continue;
      for (const [name, c] of t.chains) {
        const hook = /\bhook\s+(\w+)/.exec(c.decl)?.[1];
        const type = /\btype\s+(\w+)/.exec(c.decl)?.[1];
        items.push({
          chain: { family: t.family, table: t.name, name, handle: handle++, ...(hook ? { hook, type } : {}) },
        });
      }
      for (const [name, s] of t.sets) {
        const type = /\btype\s+([^;:]+)/.exec(s.decl)?.[1].trim() ?? "";
        items.push({
          [s.kind]: {
            family: t.family,
            table: t.name,
            name,
            type: type.includes(" . ") ? type.split(" . ") : type,
            handle: handle++,
            ...(s.elements.size ? { elem: [...s.elements.keys()] } : {}),
          },
        });
      }
      for (const [name, c] of t.chains) {
        for (const r of c.rules) {
          items.push({ rule: { family: t.family, table: t.name, chain: name, handle: handle++, expr: [r] } });
        }
      }
    }
    return { code: 0, stdout: JSON.stringify({ nftables: items }), stderr: "" };
  }

  /** Runs a script atomically; returns nft's error text when it refuses it. */
  #execute(script: string, check: boolean): string | undefined {
    const work = cloneTables(this.tables);
    // What map elements pointed at when the transaction began (for `lateChainRelease`).
    const pinned = new Map([...work].map(([k, t]) => [k, mapReferenced(t)]));
    const lines = script.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (line.trim() === "" || line.trim().startsWith("#")) continue;
      try {
        const injected = this.refuse?.(line);
        if (injected) throw new Refusal([1, line.length], injected);
        this.#command(work, line, pinned);
      } catch (e) {
        if (!(e instanceof Refusal)) throw e;
        return `/dev/stdin:${i + 1}:${e.col[0]}-${e.col[1]}: Error: ${e.message}\n${line}\n`;
      }
    }
    if (!check) {
      this.tables.clear();
      for (const [k, t] of work) this.tables.set(k, t);
    }
    return undefined;
  }

  #command(work: Map<string, FakeTable>, line: string, pinned: Map<string, Set<string>>): void {
    const whole: [number, number] = [1, line.length];
    const m = /^(add|delete|flush|create)\s+(table|chain|set|map|rule|element)\s+(\S+)\s+(\S+)\s*(.*)$/.exec(
      line.trim(),
    );
    if (!m) throw new Refusal(whole, "syntax error, unexpected junk");
    const [, verb, what, family, tname, rest] = m;
    const key = `${family} ${tname}`;
    if (what === "table") {
      if (verb === "add" || verb === "create") {
        if (!work.has(key)) work.set(key, { family, name: tname, chains: new Map(), sets: new Map() });
        else if (verb === "create") throw new Refusal(whole, "Could not process rule: File exists");
      } else if (verb === "delete") {
        if (!work.delete(key)) throw new Refusal(whole, "Could not process rule: No such file or directory");
      } else if (verb === "flush") {
        const t = work.get(key);
        if (!t) throw new Refusal(whole, "Could not process rule: No such file or directory");
        for (const c of t.chains.values()) c.rules = [];
        for (const s of t.sets.values()) s.elements.clear();
      }
      return;
    }
    const t = work.get(key);
    if (!t) throw new Refusal(whole, "Could not process rule: No such file or directory");
    const nm = /^(\S+)\s*(.*)$/.exec(rest);
    if (!nm) throw new Refusal(whole, "syntax error, unexpected newline");
    const [, name, body] = nm;
    const inner = (s: string) => /^\{(.*)\}$/.exec(s.trim())?.[1].trim() ?? "";
    if (what === "chain") {
      const c = t.chains.get(name);
      if (verb === "add" || verb === "create") {
        const decl = inner(body);
        if (c && (verb === "create" || (decl && c.decl !== decl))) {
          throw new Refusal(whole, "Could not process rule: File exists");
        }
        if (!c) t.chains.set(name, { decl, rules: [] });
      } else if (!c) {
        throw new Refusal(whole, "Could not process rule: No such file or directory");
      } else if (verb === "flush") {
        c.rules = [];
      } else {
        if (c.rules.length) throw new Refusal(whole, "Could not process rule: Device or resource busy");
        const users = [...t.chains.values()].some((x) => x.rules.some((r) => chainTargets(r).includes(name)));
        const late = this.lateChainRelease && pinned.get(key)?.has(name);
        if (users || mapReferenced(t).has(name) || late) {
          throw new Refusal(whole, "Could not process rule: Device or resource busy");
        }
        t.chains.delete(name);
      }
      return;
    }
    if (what === "set" || what === "map") {
      const s = t.sets.get(name);
      if (verb === "add" || verb === "create") {
        const decl = inner(body);
        if (s && (verb === "create" || s.kind !== what || s.decl !== decl)) {
          throw new Refusal(whole, "Could not process rule: File exists");
        }
        if (!s) {
          const elements = new Map<string, string>();
          // `elements = { … }` inside the declaration fills the set at creation.
          const inline = /elements\s*=\s*\{([^}]*)\}/.exec(decl);
          if (inline) { for (const e of splitElements(inline[1])) elements.set(e.text, ""); }
          t.sets.set(name, { kind: what, decl, elements });
        }
      } else if (!s) {
        throw new Refusal(whole, "Could not process rule: No such file or directory");
      } else if (verb === "flush") {
        s.elements.clear();
      } else {
        const used = [...t.chains.values()].some((c) => c.rules.some((r) => setRefs(r).includes(name)));
        if (used) throw new Refusal(whole, "Could not process rule: Device or resource busy");
        t.sets.delete(name);
      }
      return;
    }
    if (what === "rule") {
      const c = t.chains.get(name);
      if (!c) throw new Refusal(whole, "Could not process rule: No such file or directory");
      for (const target of chainTargets(body)) {
        if (!t.chains.has(target)) {
          throw new Refusal(whole, `Could not process rule: No such file or directory`);
        }
      }
      for (const ref of setRefs(body)) {
        if (!t.sets.has(ref)) throw new Refusal(whole, `Set '${ref}' does not exist`);
      }
      c.rules.push(body.trim());
      return;
    }
    // element
    const s = t.sets.get(name);
    if (!s) throw new Refusal(whole, "Could not process rule: No such file or directory");
    const open = line.indexOf("{");
    const close = line.lastIndexOf("}");
    if (open < 0 || close < open) throw new Refusal(whole, "syntax error, unexpected newline, expecting '{'");
    const body2 = line.slice(open + 1, close);
    for (const e of splitElements(body2)) {
      const sep = s.kind === "map" ? e.text.lastIndexOf(" : ") : -1;
      const k = sep < 0 ? e.text : e.text.slice(0, sep);
      const v = sep < 0 ? "" : e.text.slice(sep + 3);
      // nft points at the element's key, 1-based and inclusive.
      const col: [number, number] = [open + 2 + e.at, open + 1 + e.at + k.length];
      if (verb === "add" || verb === "create") {
        if (s.kind === "map" && sep < 0) throw new Refusal(col, "map element needs a value");
        for (const target of chainTargets(v)) {
          if (!t.chains.has(target)) {
            throw new Refusal(col, "Could not process rule: No such file or directory");
          }
        }
        const had = s.elements.get(k);
        if (had !== undefined && (verb === "create" || had !== v)) {
          throw new Refusal(col, "Could not process rule: File exists");
        }
        s.elements.set(k, v);
      } else if (verb === "delete") {
        if (!s.elements.delete(k)) {
          throw new Refusal(col, "Could not process rule: No such file or directory");
        }
      } else {
        throw new Refusal(whole, "syntax error");
      }
    }
  }
}

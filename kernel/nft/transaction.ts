/**
 * `nft -f` transactions over `NftTableSpec`s: the whole table replaced atomically, or the delta
 * from what was applied, touching only what changed. `NftTableSync` keeps what was applied and
 * the chains waiting to be deleted.
 *
 * Order inside a delta (nft commits the script as one transaction, but every command must make
 * sense after the ones before it): element deletes; new sets; flushes of replaced sets; new
 * chains; changed chains flushed and refilled, new chains filled; element adds; chains no longer
 * wanted flushed; chains and sets no longer wanted deleted.
 *
 * Stale chains that a map element pointed at are deleted one transaction later, as kube-proxy
 * does: on kernels before 6.2 the reference a deleted map element held on its chain is released
 * only after the transaction, so deleting the chain in the transaction that deleted the element
 * fails with EBUSY and takes the whole batch with it. Such a chain is flushed at once (nothing
 * reaches it any more) and deleted by the first transaction at least `staleChainDelayMs` later.
 *
 * @module
 */
import { chainTargets, type NftChainSpec, type NftSetSpec, type NftTableSpec } from "./table.ts";

/** Elements per `add|delete element` line: one huge line is slow for nft's parser. */
export const ELEMENT_CHUNK = 1000;

function tableRef(t: NftTableSpec): string {
  return `${t.family} ${t.name}`;
}

function elemText(e: string, v: string): string {
  return v === "" ? e : `${e} : ${v}`;
}

/** `add|delete element` lines for elements of one set, chunked. */
export function elementLines(
  verb: "add" | "delete",
  table: { family: string; name: string },
  set: string,
  elems: readonly string[],
): string[] {
  const out: string[] = [];
  for (let i = 0; i < elems.length; i += ELEMENT_CHUNK) {
    out.push(
      `${verb} element ${table.family} ${table.name} ${set} { ${
        elems.slice(i, i + ELEMENT_CHUNK).join(", ")
      } }`,
    );
  }
  return out;
}

function chainLine(t: string, name: string, c: NftChainSpec): string {
  return c.decl ? `add chain ${t} ${name} { ${c.decl} }` : `add chain ${t} ${name}`;
}

function setLine(t: string, name: string, s: NftSetSpec): string {
  return `add ${s.kind} ${t} ${name} { ${s.decl} }`;
}

/**
 * The whole table as one transaction that replaces whatever is there atomically (`add table`
 * first so `delete table` cannot fail when it is missing): sets, chains, rules, then elements
 * (a map's verdicts name chains, which must exist by then).
 */
export function fullTransaction(table: NftTableSpec): string {
  const t = tableRef(table);
  const lines = [`add table ${t}`, `delete table ${t}`, `add table ${t}`];
  for (const [name, s] of table.sets) lines.push(setLine(t, name, s));
  for (const [name, c] of table.chains) lines.push(chainLine(t, name, c));
  for (const [name, c] of table.chains) for (const r of c.rules) lines.push(`add rule ${t} ${name} ${r}`);
  for (const [name, s] of table.sets) {
    lines.push(...elementLines("add", table, name, [...s.elements].map(([e, v]) => elemText(e, v))));
  }
  return lines.join("\n") + "\n";
}

/** Removes a table if it is there (`add` first so the delete cannot fail). */
export function dropTableTransaction(table: { family: string; name: string }): string {
  const t = `${table.family} ${table.name}`;
  return `add table ${t}\ndelete table ${t}\n`;
}

/** Options of a delta. */
export interface NftDelta {
  /**
   * Element lines the caller diffed itself (the proxy's big maps, diffed per changed service):
   * `deletes` go first, `adds` after the layer's own element adds.
   */
  extra?: { deletes: readonly string[]; adds: readonly string[] };
  /** Chains flushed by an earlier transaction to delete in this one (no longer in `to`). */
  deleteStale?: Iterable<string>;
  /** Chains no longer in `to` to flush only, their deletion left to a later transaction. */
  deferDelete?: ReadonlySet<string>;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameElements(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/**
 * The transaction from `from` (what was applied) to `to`. "" when nothing changed; `undefined`
 * when the change cannot be made in place (a set's type or a chain's hook changed): replace the
 * table whole then.
 */
export function deltaTransaction(
  from: NftTableSpec,
  to: NftTableSpec,
  opts: NftDelta = {},
): string | undefined {
  const t = tableRef(to);
  const delElems: string[] = [], addSets: string[] = [], flushSets: string[] = [], addChains: string[] = [];
  const fill: string[] = [], addElems: string[] = [], flushGone: string[] = [], dropChains: string[] = [];
  const dropSets: string[] = [];
  for (const [name, s] of to.sets) {
    const old = from.sets.get(name);
    if (old && (old.decl !== s.decl || old.kind !== s.kind)) return undefined;
    if (!old) {
      addSets.push(setLine(t, name, s));
      addElems.push(...elementLines("add", to, name, [...s.elements].map(([e, v]) => elemText(e, v))));
    } else if (s.replaceOnChange) {
      if (sameElements(old.elements, s.elements)) continue;
      flushSets.push(`flush set ${t} ${name}`);
      addElems.push(...elementLines("add", to, name, [...s.elements].map(([e, v]) => elemText(e, v))));
    } else {
      const gone: string[] = [], come: string[] = [];
      for (const [e, v] of old.elements) if (s.elements.get(e) !== v) gone.push(e); // delete takes the key only
      for (const [e, v] of s.elements) if (old.elements.get(e) !== v) come.push(elemText(e, v));
      delElems.push(...elementLines("delete", to, name, gone));
      addElems.push(...elementLines("add", to, name, come));
    }
  }
  for (const [name, c] of to.chains) {
    const old = from.chains.get(name);
    if (old && old.decl !== c.decl) return undefined;
    if (!old) {
      addChains.push(chainLine(t, name, c));
      for (const r of c.rules) fill.push(`add rule ${t} ${name} ${r}`);
    } else if (!sameList(old.rules, c.rules)) {
      fill.push(`flush chain ${t} ${name}`);
      for (const r of c.rules) fill.push(`add rule ${t} ${name} ${r}`);
    }
  }
  for (const name of from.chains.keys()) {
    if (to.chains.has(name)) continue;
    flushGone.push(`flush chain ${t} ${name}`);
    if (!opts.deferDelete?.has(name)) dropChains.push(`delete chain ${t} ${name}`);
  }
  for (const name of opts.deleteStale ?? []) {
    if (!to.chains.has(name)) dropChains.push(`delete chain ${t} ${name}`);
  }
  for (const name of from.sets.keys()) {
    if (!to.sets.has(name)) dropSets.push(`delete ${from.sets.get(name)!.kind} ${t} ${name}`);
  }
  const lines = [
    ...opts.extra?.deletes ?? [],
    ...delElems,
    ...addSets,
    ...flushSets,
    ...addChains,
    ...fill,
    ...addElems,
    ...opts.extra?.adds ?? [],
    ...flushGone,
    ...dropChains,
    ...dropSets,
  ];
  return lines.length ? lines.join("\n") + "\n" : "";
}

/** Chains of `table` that a map element (named map or anonymous verdict map) points at. */
export function mapTargets(table: NftTableSpec): Set<string> {
  const out = new Set<string>();
  for (const s of table.sets.values()) {
    if (s.kind !== "map") continue;
    for (const v of s.elements.values()) for (const c of chainTargets(v)) out.add(c);
  }
  for (const [name, c] of table.chains) {
    if (c.mapTarget) out.add(name);
    for (const r of c.rules) {
      const vmap = /\bvmap\s*\{([^}]*)\}/.exec(r);
      if (vmap) { for (const target of chainTargets(vmap[1])) out.add(target); }
    }
  }
  return out;
}

/** A transaction ready to run, and what to remember once it committed. */
export interface NftTransaction {
  /** The script ("" when nothing changed). */
  script: string;
  /** Whether it replaces the table whole. */
  full: boolean;
  /** Records the transaction as applied; call only after nft committed it. */
  commit(): void;
}

export interface NftTableSyncOptions {
  /** Clock for stale-chain ages (ms). Default `Date.now`. */
  now?: () => number;
  /** How long a flushed stale chain waits before it is deleted (kube-proxy: 1 s). */
  staleChainDelayMs?: number;
}

/**
 * What was applied to one table, and the transaction to the next state. The first transaction
 * (and the first after `invalidate()`, e.g. after a refused batch) replaces the table whole.
 */
export class NftTableSync {
  #applied?: NftTableSpec;
  /** Chains flushed but not yet deleted → when they were flushed. */
  #stale = new Map<string, number>();
  readonly #now: () => number;
  readonly #delay: number;

  constructor(opts: NftTableSyncOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#delay = opts.staleChainDelayMs ?? 1000;
  }

  /** The state last committed, if any. */
  get applied(): NftTableSpec | undefined {
    return this.#applied;
  }

  /** Chains flushed by an earlier transaction and not yet deleted. */
  get staleChains(): ReadonlySet<string> {
    return new Set(this.#stale.keys());
  }

  /** Forgets what was applied: the next transaction replaces the table whole. */
  invalidate(): void {
    this.#applied = undefined;
    this.#stale.clear();
  }

  /**
   * The transaction to `next`. `full` forces a whole-table replace; `fullTable` is what such a
   * replace writes when it differs from `next` (the proxy remembers its big maps outside the
   * state); `extra` are element lines the caller diffed itself.
   */
  transaction(
    next: NftTableSpec,
    opts: { full?: boolean; fullTable?: NftTableSpec; extra?: NftDelta["extra"] } = {},
  ): NftTransaction {
    const last = this.#applied;
    const now = this.#now();
    if (last && !opts.full) {
      const due = [...this.#stale].filter(([c, at]) => !next.chains.has(c) && now - at >= this.#delay)
        .map(([c]) => c);
      const targets = mapTargets(last);
      const defer = new Set([...last.chains.keys()].filter((c) => !next.chains.has(c) && targets.has(c)));
      const script = deltaTransaction(last, next, {
        extra: opts.extra,
        deleteStale: due,
        deferDelete: defer,
      });
      if (script !== undefined) {
        return {
          script,
          full: false,
          commit: () => {
            this.#applied = next;
            for (const c of due) this.#stale.delete(c);
            for (const c of next.chains.keys()) this.#stale.delete(c); // back in use (refilled)
            for (const c of defer) this.#stale.set(c, now);
          },
        };
      }
    }
    return {
      script: fullTransaction(opts.fullTable ?? next),
      full: true,
      commit: () => {
        this.#applied = next;
        this.#stale.clear();
      },
    };
  }
}

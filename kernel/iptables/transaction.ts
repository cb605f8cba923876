/**
 * `iptables-restore --noflush` transactions that touch only the chains they name. Declaring
 * `:CHAIN - [0:0]` creates the chain or flushes it; `-X` deletes one; `-I`/`-D` edit a built-in
 * chain rule by rule. Everything in one table commits atomically or not at all.
 *
 * @module
 */
import { joinArgs } from "./args.ts";

/** What one table's transaction does, in the order it is rendered. */
export interface NoflushTransaction {
  table: string;
  /** Chains rewritten from scratch: declared (so flushed or created), then filled in order. */
  replaceChains: ReadonlyMap<string, readonly (readonly string[])[]>;
  /** Chains flushed and then deleted (after the rewritten chains no longer jump to them). */
  deleteChains?: readonly string[];
  /**
   * Raw edits of other chains, rendered after the rewrites and before the deletions, e.g.
   * `["-D", "INPUT", "-j", "X"]` or `["-I", "INPUT", "1", "-j", "X"]`.
   */
  edits?: readonly (readonly string[])[];
}

/** Whether the transaction changes nothing. */
export function isEmptyTransaction(tx: NoflushTransaction): boolean {
  return tx.replaceChains.size === 0 && !tx.deleteChains?.length && !tx.edits?.length;
}

/** Renders a transaction for `iptables-restore --noflush`. */
export function renderNoflush(tx: NoflushTransaction): string {
  const out: string[] = [`*${tx.table}`];
  const del = tx.deleteChains ?? [];
  for (const name of tx.replaceChains.keys()) out.push(`:${name} - [0:0]`);
  for (const name of del) if (!tx.replaceChains.has(name)) out.push(`:${name} - [0:0]`);
  for (const [name, rules] of tx.replaceChains) {
    for (const args of rules) out.push(joinArgs(["-A", name, ...args]));
  }
  for (const e of tx.edits ?? []) out.push(joinArgs(e));
  for (const name of del) if (!tx.replaceChains.has(name)) out.push(`-X ${name}`);
  out.push("COMMIT");
  return out.join("\n") + "\n";
}

/** The `-j` target of a rule's arguments. */
export function jumpTarget(args: readonly string[]): string | undefined {
  const i = args.lastIndexOf("-j");
  return i >= 0 ? args[i + 1] : undefined;
}

/**
 * Edits that leave exactly one jump from `chain` (a built-in such as INPUT) to `target`, at
 * position 1: nothing when that already holds; otherwise `-D` of every existing copy (as listed,
 * so it matches) and one `-I chain 1 ...`. `current` is the chain's rules (`iptables -S chain`).
 */
export function ensureJumpFirstEdits(
  current: readonly { args: readonly string[] }[],
  chain: string,
  target: string,
  jumpArgs: readonly string[],
): string[][] {
  const ours = current.filter((r) => jumpTarget(r.args) === target);
  if (ours.length === 1 && current.length > 0 && jumpTarget(current[0].args) === target) return [];
  return [...ours.map((r) => ["-D", chain, ...r.args]), ["-I", chain, "1", ...jumpArgs]];
}

/**
 * Runs a list of iproute2 lines as ONE `ip -batch -` (or `bridge -batch -`) process.
 *
 * `ip -batch` stops at the first failing line (no `-force`), so the `ExecError` names the line
 * that failed and the lines after it did not run.
 *
 * @module
 */
import type { ExecResult, Runner } from "../exec.ts";

/** Runs `ip -batch -` with the lines; no process when `lines` is empty. */
export async function ipBatch(runner: Runner, lines: readonly string[]): Promise<ExecResult | null> {
  if (lines.length === 0) return null;
  return await runner.run(["ip", "-batch", "-"], { stdin: lines.join("\n") + "\n" });
}

/** Runs `bridge -batch -` with the lines; no process when `lines` is empty. */
export async function bridgeBatch(runner: Runner, lines: readonly string[]): Promise<ExecResult | null> {
  if (lines.length === 0) return null;
  return await runner.run(["bridge", "-batch", "-"], { stdin: lines.join("\n") + "\n" });
}

/** Runs a read-only `ip`/`bridge` listing and returns its stdout. */
export async function ipRead(runner: Runner, argv: readonly string[]): Promise<string> {
  return (await runner.run(argv, { readOnly: true })).stdout;
}

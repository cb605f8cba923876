/**
 * Kernel parameters through `sysctl`, batched: one read process and at most one write process per
 * call. `sysctl` runs through the `Runner`, so a namespace-scoped key (net.*) is set inside the
 * runner's network namespace, never in the agent's own.
 *
 * @module
 */
import type { Runner } from "./exec.ts";

/** Reads keys; a key the kernel does not have maps to `undefined`. */
export async function readSysctls(runner: Runner, keys: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (keys.length === 0) return out;
  // -e: ignore unknown keys (they are simply absent from the result).
  const res = await runner.run(["sysctl", "-e", ...keys], { readOnly: true, okCodes: [0, 255] });
  for (const line of res.stdout.split("\n")) {
    const m = /^(\S+)\s*=\s*(.*)$/.exec(line.trim());
    if (m) out.set(m[1].replaceAll("/", "."), m[2]);
  }
  return out;
}

/**
 * Sets each key that differs from the wanted value, in one `sysctl -w` process. Returns the keys
 * changed. Keys the kernel does not have are reported in the thrown error (in a dry run, whose
 * reads may be blank, they are shown as writes instead).
 */
export async function ensureSysctls(runner: Runner, wanted: ReadonlyMap<string, string>): Promise<string[]> {
  const current = await readSysctls(runner, [...wanted.keys()]);
  const missing = [...wanted.keys()].filter((k) => !current.has(k));
  // In a dry run an unread key may only mean `sysctl` is not installed here: show its write.
  if (missing.length > 0 && !runner.readsMayBeBlank) {
    throw new Error(`sysctl: kernel has no ${missing.map((k) => JSON.stringify(k)).join(", ")}`);
  }
  const changes = [...wanted].filter(([k, v]) => current.get(k) !== v);
  if (changes.length === 0) return [];
  await runner.run(["sysctl", "-q", "-w", ...changes.map(([k, v]) => `${k}=${v}`)]);
  return changes.map(([k]) => k);
}

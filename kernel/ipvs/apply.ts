/**
 * Running ipvsadm: read the table (`ipvsadm -Sn`), send one `ipvsadm -R` batch, set the global
 * timeouts (`ipvsadm --set`). Everything goes through the `Runner`.
 *
 * @module
 */
import { ExecError, type Runner } from "../exec.ts";
import { parseSave } from "./codec.ts";
import type { IpvsTable, IpvsTimeouts } from "./types.ts";

/** Reads the kernel's IPVS table. */
export async function readIpvs(runner: Runner): Promise<IpvsTable> {
  const r = await runner.run(["ipvsadm", "-Sn"], { readOnly: true });
  return parseSave(r.stdout);
}

/**
 * Sends one restore batch; nothing runs for an empty batch. ipvsadm runs the lines one by one,
 * goes on after a line the kernel refuses, and exits with the LAST line's status: a refusal in
 * the middle shows only as its message on stderr, so any stderr is a refusal here.
 */
export async function restoreIpvs(runner: Runner, batch: string): Promise<boolean> {
  if (batch === "") return false;
  const argv = ["ipvsadm", "-R"];
  const r = await runner.run(argv, { stdin: batch });
  if (r.stderr.trim() !== "") throw new ExecError(argv, r.code, r.stderr, batch);
  return true;
}

/** Parses the `Timeout (tcp tcpfin udp): 900 120 300` line of `ipvsadm -L --timeout`. */
export function parseTimeouts(text: string): IpvsTimeouts | undefined {
  const m = /Timeout \(tcp tcpfin udp\):\s*(\d+)\s+(\d+)\s+(\d+)/.exec(text);
  return m ? { tcp: Number(m[1]), tcpfin: Number(m[2]), udp: Number(m[3]) } : undefined;
}

export async function readTimeouts(runner: Runner): Promise<IpvsTimeouts | undefined> {
  const r = await runner.run(["ipvsadm", "-L", "--timeout"], { readOnly: true });
  return parseTimeouts(r.stdout);
}

/** `ipvsadm --set tcp tcpfin udp` (0 keeps a value); nothing runs when all three are 0. */
export async function setTimeouts(runner: Runner, t: IpvsTimeouts): Promise<boolean> {
  if (t.tcp === 0 && t.tcpfin === 0 && t.udp === 0) return false;
  await runner.run(["ipvsadm", "--set", String(t.tcp), String(t.tcpfin), String(t.udp)]);
  return true;
}

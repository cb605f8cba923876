/**
 * Reconciles the kernel's routes of our protocol with a desired list: one read per family, one
 * `ip -batch` for every change, nothing run when nothing differs.
 *
 * @module
 */
import type { Runner } from "../exec.ts";
import { ipBatch, ipRead } from "./batch.ts";
import {
  diffRoutes,
  listOurRoutesArgv,
  parseRoutes,
  renderRouteDiff,
  type Route,
  ROUTE_PROTO,
} from "./route.ts";

/** Our routes currently in the kernel (both families, every table). */
export async function readOurRoutes(
  runner: Runner,
  families: ReadonlyArray<4 | 6> = [4, 6],
): Promise<Route[]> {
  const out: Route[] = [];
  for (const fam of families) {
    for (const r of parseRoutes(await ipRead(runner, listOurRoutesArgv(fam)), fam, ROUTE_PROTO)) {
      const { protocol: _p, ...route } = r;
      out.push(route);
    }
  }
  return out;
}

/** Makes our kernel routes equal `desired`; returns the batch lines run (empty when in sync). */
export async function syncRoutes(
  runner: Runner,
  desired: readonly Route[],
  families: ReadonlyArray<4 | 6> = [4, 6],
): Promise<string[]> {
  const kernel = await readOurRoutes(runner, families);
  const lines = renderRouteDiff(diffRoutes(desired, kernel));
  await ipBatch(runner, lines);
  return lines;
}

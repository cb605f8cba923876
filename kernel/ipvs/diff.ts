/**
 * The difference between the IPVS table the kernel has and the one we want, as the commands of
 * one `ipvsadm -R` batch. Services that are not ours (`owned` says no) are never edited or
 * deleted, even when the desired table lacks them.
 *
 * @module
 */
import { type IpvsCommand, renderCommand } from "./codec.ts";
import type { IpvsDestination, IpvsService, IpvsTable } from "./types.ts";

export interface DiffOptions {
  /** Whether a service found in the kernel but not desired is ours to delete. */
  owned(service: IpvsService): boolean;
}

function sameService(a: IpvsService, b: IpvsService): boolean {
  return a.scheduler === b.scheduler && a.persistence === b.persistence && a.netmask === b.netmask &&
    a.pe === b.pe && a.ops === b.ops && a.schedFlags.join(",") === b.schedFlags.join(",");
}

function sameDestination(a: IpvsDestination, b: IpvsDestination): boolean {
  return a.forward === b.forward && a.weight === b.weight && a.upperThreshold === b.upperThreshold &&
    a.lowerThreshold === b.lowerThreshold && (a.tunType ?? "ipip") === (b.tunType ?? "ipip") &&
    a.tunPort === b.tunPort;
}

/**
 * Commands that turn `current` into `desired` (for the services we own). Order: stale services
 * deleted, edits, new services, then per service real-server deletes, edits and adds; sorted by
 * key within each group so batches are reproducible.
 */
export function diffTables(current: IpvsTable, desired: IpvsTable, opts: DiffOptions): IpvsCommand[] {
  const deletes: IpvsCommand[] = [];
  const edits: IpvsCommand[] = [];
  const adds: IpvsCommand[] = [];
  const servers: IpvsCommand[] = [];
  for (const key of [...current.keys()].sort()) {
    if (!desired.has(key) && opts.owned(current.get(key)!.service)) {
      deletes.push({ op: "delete-service", ref: current.get(key)!.service });
    }
  }
  for (const key of [...desired.keys()].sort()) {
    const want = desired.get(key)!;
    const have = current.get(key);
    if (!have) {
      adds.push({ op: "add-service", service: want.service });
      for (const dk of [...want.destinations.keys()].sort()) {
        servers.push({ op: "add-server", ref: want.service, destination: want.destinations.get(dk)! });
      }
      continue;
    }
    if (!sameService(have.service, want.service)) edits.push({ op: "edit-service", service: want.service });
    for (const dk of [...have.destinations.keys()].sort()) {
      if (!want.destinations.has(dk)) {
        const d = have.destinations.get(dk)!;
        servers.push({ op: "delete-server", ref: want.service, address: d.address, port: d.port });
      }
    }
    for (const dk of [...want.destinations.keys()].sort()) {
      const d = want.destinations.get(dk)!;
      const h = have.destinations.get(dk);
      if (!h) servers.push({ op: "add-server", ref: want.service, destination: d });
      else if (!sameDestination(h, d)) servers.push({ op: "edit-server", ref: want.service, destination: d });
    }
  }
  return [...deletes, ...edits, ...adds, ...servers];
}

/** The `ipvsadm -R` input for a list of commands ("" when there is nothing to do). */
export function renderBatch(commands: readonly IpvsCommand[]): string {
  return commands.length ? commands.map(renderCommand).join("\n") + "\n" : "";
}

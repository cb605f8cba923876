/**
 * Process-wide counters of contained failures, callable from any layer without a registry in
 * hand: objects skipped for bad input (watch/, the planners) and kernel transactions a tool
 * refused (kernel/exec.ts). The agent exports both (`kube_router_objects_skipped_total`,
 * `kube_router_transaction_refusals_total`).
 *
 * @module
 */
import { Counter } from "./metrics.ts";
import { OUR_METRICS } from "./upstream_metrics.ts";

const spec = (name: string) => OUR_METRICS.find((m) => m.name === name)!;
const skippedSpec = spec("kube_router_objects_skipped_total");
const refusedSpec = spec("kube_router_transaction_refusals_total");

export const OBJECTS_SKIPPED = new Counter(skippedSpec.name, skippedSpec.help, skippedSpec.labels);
export const TRANSACTION_REFUSALS = new Counter(refusedSpec.name, refusedSpec.help, refusedSpec.labels);

/**
 * Counts one object (or one field of it) skipped for bad input. `kind` is the object's kind
 * (`Service`, `NetworkPolicy`, `Node`, `EndpointSlice`, `Pod`, ...); `reason` a short stable
 * token (`invalid-field`, `outside-range`, `unparsable`), never the object's name (unbounded).
 */
export function countSkippedObject(kind: string, reason: string): void {
  OBJECTS_SKIPPED.inc({ kind, reason });
}

/** Counts one transaction the named tool refused (`iptables-restore`, `ipset`, `nft`, `ip`, `ipvsadm`). */
export function countRefusedTransaction(tool: string): void {
  TRANSACTION_REFUSALS.inc({ tool });
}

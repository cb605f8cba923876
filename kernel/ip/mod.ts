/**
 * iproute2 in batches: routes (our protocol number 17), links, rules, neighbours and FDB entries.
 * `address.ts` (kube-dummy-if addresses) belongs to the proxy.
 *
 * @module
 */
export * from "./route.ts";
export * from "./link.ts";
export * from "./rule.ts";
export * from "./neigh.ts";
export * from "./batch.ts";
export * from "./link_addr.ts";
export * from "./route_sync.ts";
export * from "./route_write.ts";

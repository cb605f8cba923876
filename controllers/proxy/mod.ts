/**
 * The service proxy: public surface for the agent (`createProxyController`, `proxyCleanup`) and
 * for tests and benchmarks (the pure plan and the renderers).
 *
 * @module
 */
import type { CleanupFn } from "../controller.ts";
import { proxyCleanup as cleanup } from "./cleanup.ts";

export {
  createProxyController,
  nodeIdentity,
  ProxyController,
  type ProxyControllerExtras,
} from "./controller.ts";
export { plan } from "./plan.ts";
export { NftApplier, nftCleanup } from "./nft_apply.ts";
export { desiredIpvsTable, DUMMY_IF, IpvsApplier } from "./ipvs_apply.ts";
export type * from "./types.ts";

/** Removes everything the proxy programmed (nothing else); idempotent, needs no snapshot. */
export const proxyCleanup: CleanupFn = (ctx) => cleanup(ctx);

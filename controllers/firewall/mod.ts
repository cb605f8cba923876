/**
 * The network policy firewall: NetworkPolicy v1 for this node's pods, on iptables + ipset or
 * nftables. See README.md for the kernel layout.
 *
 * @module
 */
export { detectIptablesBackend } from "../../kernel/iptables/mod.ts";
export {
  createFirewallController,
  firewallCleanup,
  FirewallController,
  type FirewallControllerExtras,
} from "./controller.ts";
export { type FirewallPlan, type FirewallPlanOptions, planFirewall, type PlanProblem } from "./plan.ts";
export { type ApplyStats, cleanupIptables, IptablesApplier } from "./iptables_apply.ts";
export { cleanupNft, NftApplier } from "./nft_apply.ts";
export { isOurChain, isOurNftTable, isOurSet } from "./names.ts";

/**
 * The controllers the agent can run, loaded on first use so `kube-router annotate` or `bgp`
 * do not pay for the BGP speaker or the firewall planner. The specifiers are literals, so
 * `deno compile`/`deno bundle` still include every controller.
 *
 * @module
 */
import type { CleanupFn, Controller, ControllerContext } from "./controller.ts";

export type ControllerName = "proxy" | "firewall" | "router" | "loadbalancer";

export interface ControllerModule {
  create(ctx: ControllerContext): Controller;
  cleanup: CleanupFn;
}

export const CONTROLLERS: Record<ControllerName, { load(): Promise<ControllerModule> }> = {
  proxy: {
    load: async () => {
      const m = await import("./proxy/mod.ts");
      return { create: m.createProxyController, cleanup: m.proxyCleanup };
    },
  },
  firewall: {
    load: async () => {
      const m = await import("./firewall/mod.ts");
      return { create: m.createFirewallController, cleanup: m.firewallCleanup };
    },
  },
  router: {
    load: async () => {
      const m = await import("./router/mod.ts");
      return { create: m.createRouterController, cleanup: m.routerCleanup };
    },
  },
  loadbalancer: {
    load: async () => {
      const m = await import("./loadbalancer/mod.ts");
      return { create: m.createLoadBalancerController, cleanup: m.loadbalancerCleanup };
    },
  },
};

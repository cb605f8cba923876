/**
 * The routing controller's public surface: `createRouterController`, `routerCleanup`, and the
 * `kube-router bgp ...` status subcommand.
 *
 * @module
 */
import { cniConfPath, removeManagedConf } from "../../kernel/cni/conf.ts";
import {
  ipBatch,
  ipRead,
  listLinksArgv,
  listRulesArgv,
  OVERLAY_TABLE,
  parseLinks,
  parseRules,
  renderLinkDel,
  renderRuleDel,
  syncRoutes,
} from "../../kernel/ip/mod.ts";
import { detectIptablesBackend, type IptablesBackend } from "../../kernel/iptables/mod.ts";
import type { CleanupFn, Controller, ControllerContext } from "../controller.ts";
import { RouterController, type RouterDeps } from "./controller.ts";
import { BRIDGE, bridgeCleanupLines, readHostFacts } from "./host.ts";
import { cleanupNetfilter } from "./iptables_apply.ts";
import { isOurLink } from "./routes.ts";

export { RouterController, type RouterDeps } from "./controller.ts";
export { planRouter, type RouterPlan } from "./plan.ts";
export { runBgpStatus } from "./status_cli.ts";

/** Builds the routing controller. */
export function createRouterController(ctx: ControllerContext, deps: RouterDeps = {}): Controller {
  return new RouterController(ctx, deps);
}

/** Options of `routerCleanupWith` (tests point the CNI path and iptables backend elsewhere). */
export interface RouterCleanupOptions {
  cniConfPath?: string;
  iptablesBackend?: IptablesBackend;
}

/**
 * Removes what the router programs and nothing else: routes of protocol 17 (both families, every
 * table), `from … lookup 77` rules, our tunnels and the VXLAN device, our iptables chains and
 * jumps, our ipsets, and the CNI config if we created it. kube-bridge is undone per the record
 * the router keeps on it (`bridgeCleanupLines`): deleted if we created it, else restored (MTU,
 * state, only our addresses removed, so attached pods keep their gateway); without a record,
 * deleted only when it holds a pod gateway and no port (the bridge plugin's, its pods gone). Idempotent.
 */
export async function routerCleanupWith(ctx: ControllerContext, o: RouterCleanupOptions = {}): Promise<void> {
  const runner = ctx.runner;
  await syncRoutes(runner, [], [4, 6]);
  const lines: string[] = [];
  for (const fam of [4, 6] as const) {
    for (const r of parseRules(await ipRead(runner, listRulesArgv(fam)))) {
      if (r.table === OVERLAY_TABLE) lines.push(renderRuleDel(r));
    }
  }
  for (const l of parseLinks(await ipRead(runner, listLinksArgv()))) {
    if (isOurLink(l.name)) lines.push(renderLinkDel(l.name));
  }
  const bridge = bridgeCleanupLines(await readHostFacts(runner));
  lines.push(...bridge.lines);
  await ipBatch(runner, lines);
  if (bridge.note !== "absent") {
    ctx.log.info("router cleanup: {bridge}: {what}", { bridge: BRIDGE, what: bridge.note });
  }
  const backend = o.iptablesBackend ?? await detectIptablesBackend(runner);
  for (const v6 of [false, true]) {
    try {
      await cleanupNetfilter(runner, backend, v6);
    } catch (e) {
      ctx.log.warn("router cleanup: netfilter ({family}): {error}", {
        family: v6 ? "IPv6" : "IPv4",
        error: (e as Error).message,
      });
    }
  }
  // Only the file the agent was told to write (--cni-conf-file / KUBE_ROUTER_CNI_CONF_FILE),
  // and only if it created it: never a file at another path, even one carrying our mark.
  // The record on kube-bridge names the file the running agent wrote, which is what a cleanup
  // started without the agent's environment must remove.
  const cni = o.cniConfPath ?? bridge.cni ?? (ctx.options.cniConfFile || cniConfPath());
  if (!ctx.dryRun && await removeManagedConf(cni)) {
    ctx.log.info("router cleanup: removed the CNI config we created ({path})", { path: cni });
  }
}

/** `kube-router cleanup` for the router. */
export const routerCleanup: CleanupFn = (ctx) => routerCleanupWith(ctx);

/**
 * Test-only launcher of the routing controller, until `main.ts router` is wired: parses the
 * agent's flags, opens the snapshot source (`--kubeconfig` → API informers, `--manifests` → files),
 * and runs `createRouterController` under the controller runner. Meant to run inside a lab node
 * namespace: `ip netns exec <node> deno run -A tests/e2e/router_agent.ts --hostname-override node-1 ...`.
 * SIGTERM stops it (gracefully with --bgp-graceful-restart); SIGKILL simulates a crash.
 *
 * @module
 */
import { parseFlags } from "../../cmd/flag_parse.ts";
import type { ControllerContext } from "../../controllers/controller.ts";
import { createRouterController } from "../../controllers/router/mod.ts";
import { runController } from "../../controllers/runner.ts";
import { CommandRunner } from "../../kernel/exec.ts";
import { logger, setupLogging } from "../../observe/log.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { apiSource } from "../../watch/api.ts";
import { manifestSource } from "../../watch/manifests.ts";

const { options: o } = parseFlags(Deno.args, (k) => Deno.env.get(k));
await setupLogging({ verbosity: Number(o.v) || 1, format: "text" });
const log = logger("router");
const abort = new AbortController();
for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, () => abort.abort());

const source = o.manifests
  ? await manifestSource(o.manifests, { onProblem: (m) => log.warn(m) })
  : await apiSource({
    kubeconfig: o.kubeconfig,
    master: o.master,
    log: (level, m) => level === "error" ? log.error(m) : level === "warning" ? log.warn(m) : log.info(m),
  });
await source.ready;
const ctx: ControllerContext = {
  options: o,
  runner: new CommandRunner(),
  nodeName: o.hostnameOverride || Deno.hostname(),
  log,
  metrics: new MetricsRegistry(),
  dryRun: false,
};
const c = createRouterController(ctx);
await c.start!(abort.signal);
const h = runController(c, source, {
  signal: abort.signal,
  minIntervalMs: 50,
  backoff: { initialMs: 500, maxMs: 5000 },
  onError: (_n, e, retry) =>
    log.error("sync failed (retry in {retry} ms): {error}", { retry, error: String(e) }),
});
h.firstSync.then(() => log.info("router: first sync done", {}));
await new Promise<void>((r) => abort.signal.addEventListener("abort", () => r(), { once: true }));
await h.done;
await c.stop!();
await source.close();
log.info("router agent stopped", {});

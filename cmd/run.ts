/**
 * `kube-router run` (and `proxy`, `firewall`, `router`): the agent's life cycle, in upstream's
 * start order: health server → cluster source (wait for the initial lists, bounded by
 * `--cache-sync-timeout`) → metrics → controllers, each driven by its own runner. SIGTERM and
 * SIGINT arrive as the abort `signal`; controllers stop, servers close, and `run` returns.
 *
 * @module
 */
import type { AgentOptions } from "../options/mod.ts";
import { ConfigError } from "../errors/mod.ts";
import type { Controller, ControllerContext } from "../controllers/controller.ts";
import { laneFactory, runController } from "../controllers/runner.ts";
import { MemoryTrimmer } from "../controllers/memory_trim.ts";
import { type ControllerName, CONTROLLERS } from "../controllers/registry.ts";
import { CommandRunner, DryRunRunner, formatCommand, type Runner } from "../kernel/exec.ts";
import { healthRoute, HealthTracker, serveHttp } from "../observe/health.ts";
import { literal, logger } from "../observe/log.ts";
import { MetricsRegistry } from "../observe/metrics.ts";
import {
  countRefusedTransaction,
  countSourceProblem,
  OBJECTS_SKIPPED,
  TRANSACTION_REFUSALS,
} from "../observe/problems.ts";
import { registerCatalog } from "../observe/upstream_metrics.ts";
import type { SnapshotSource } from "../watch/store.ts";
import { VERSION } from "./version.ts";

/** Which controllers a subcommand runs, before the `--run-*` flags are applied. */
export function enabledControllers(subcommand: string, o: AgentOptions): ControllerName[] {
  switch (subcommand) {
    case "proxy":
      return ["proxy"];
    case "firewall":
      return ["firewall"];
    case "router":
      return ["router"];
    default: {
      const out: ControllerName[] = [];
      if (o.runRouter) out.push("router");
      if (o.runServiceProxy) out.push("proxy");
      if (o.runFirewall) out.push("firewall");
      if (o.runLoadbalancer) out.push("loadbalancer");
      return out;
    }
  }
}

/** `--hostname-override`, else `NODE_NAME` (applied by the flag table's env fallback), else the hostname. */
export function nodeName(o: AgentOptions): string {
  return o.hostnameOverride || Deno.hostname();
}

export interface RunIO {
  /** Where `--dry-run` prints transactions (stdout). */
  print: (text: string) => void;
}

async function openSource(o: AgentOptions, log: ReturnType<typeof logger>): Promise<SnapshotSource> {
  // Loaded on use: the Kubernetes client is most of the agent's start-up time, and a
  // --manifests agent (or a restart racing kubelet's grace period) should not pay for it.
  if (o.manifests) {
    const { manifestSource } = await import("../watch/manifests.ts");
    return await manifestSource(o.manifests, {
      onProblem: (m) => {
        countSourceProblem(m);
        log.warn(literal(m));
      },
    });
  }
  const { apiSource } = await import("../watch/api.ts");
  return await apiSource({
    kubeconfig: o.kubeconfig,
    master: o.master,
    onProblem: countSourceProblem,
    log: (level, text) => {
      const m = literal(text);
      level === "error" ? log.error(m) : level === "warning" ? log.warn(m) : log.info(m);
    },
  });
}

/** Thrown when SIGTERM/SIGINT arrives before the agent has started: a clean stop, not a failure. */
export class Stopped extends Error {
  constructor(reason: unknown) {
    super(`stopped before start-up completed (${(reason as Error)?.message ?? String(reason)})`);
    this.name = "Stopped";
  }
}

/**
 * Waits for `p`, bounded by `ms` (when given) and by `signal`: a stop during the initial sync
 * must not wait for `--cache-sync-timeout`, nor for a read that never returns.
 */
export async function untilReady<T>(
  p: Promise<T>,
  signal: AbortSignal,
  what: string,
  ms?: number,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort = () => {};
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        if (ms !== undefined) {
          timer = setTimeout(() => reject(new Error(`${what} did not complete within ${ms} ms`)), ms);
        }
        onAbort = () => reject(new Stopped(signal.reason));
        if (signal.aborted) onAbort();
        else signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}

export function makeRunner(o: AgentOptions, io: RunIO): Runner {
  if (!o.dryRun) {
    const r = new CommandRunner();
    r.onRefused = countRefusedTransaction;
    return r;
  }
  // Reads run for real where they can (so the plan is diffed against this machine), writes are printed.
  return new DryRunRunner((cmd) => io.print(formatCommand(cmd) + "\n"), new CommandRunner());
}

export async function runAgent(
  o: AgentOptions,
  enabled: ControllerName[],
  signal: AbortSignal,
  io: RunIO,
): Promise<void> {
  const log = logger("agent");
  const name = nodeName(o);
  if (enabled.length === 0) throw new ConfigError("no controller is enabled: every --run-* flag is false");
  log.info("kube-router {version} starting on node {node} with {controllers}", {
    version: VERSION,
    node: name,
    controllers: enabled.join(","),
  });

  const metrics = new MetricsRegistry();
  registerCatalog(metrics, enabled);
  metrics.adopt(OBJECTS_SKIPPED);
  metrics.adopt(TRANSACTION_REFUSALS);
  // Upstream labels its Go version; ours is the Deno runtime's.
  metrics.gauge("kube_router_build_info", "").set(1, {
    version: VERSION,
    goversion: `deno${Deno.version.deno}`,
  });
  const health = new HealthTracker(Date.now());
  const servers: Deno.HttpServer[] = [];
  const httpAbort = new AbortController();
  const stopHttp = () => httpAbort.abort();
  signal.addEventListener("abort", stopHttp, { once: true });

  if (o.healthPort !== 0 && !o.dryRun) {
    servers.push(serveHttp(
      { hostname: o.healthAddr, port: o.healthPort, signal: httpAbort.signal },
      { "/healthz": healthRoute(health) },
    ));
  }

  let source: SnapshotSource;
  let failure: unknown;
  try {
    source = await untilReady(openSource(o, log), signal, "opening the cluster source");
  } catch (e) {
    stopHttp();
    await Promise.allSettled(servers.map((s) => s.finished));
    throw e;
  }
  try {
    await untilReady(
      source.ready,
      signal,
      "initial list of cluster objects (--cache-sync-timeout)",
      o.cacheSyncTimeout,
    );
    // As upstream: an agent whose own Node does not exist cannot plan for it.
    if (!source.current().nodes.has(name)) {
      throw new Error(
        `node ${JSON.stringify(name)} not found in the cluster after the initial sync: ` +
          `set --hostname-override (or NODE_NAME) to this node's name as registered (${source.current().nodes.size} nodes known${
            source.current().nodes.size
              ? `, e.g. ${
                [...source.current().nodes.keys()].slice(0, 3).map((n) => JSON.stringify(n)).join(", ")
              }`
              : ""
          })`,
      );
    }
    if (o.metricsPort > 0 && o.metricsPort < 65535 && !o.dryRun) {
      servers.push(serveHttp(
        { hostname: o.metricsAddr, port: o.metricsPort, signal: httpAbort.signal },
        {
          [o.metricsPath]: async () => {
            await metrics.collect();
            return new Response(metrics.render(), {
              headers: { "content-type": "text/plain; version=0.0.4" },
            });
          },
        },
      ));
    }

    const runner = makeRunner(o, io);
    const trimmer = new MemoryTrimmer({
      onTrim: (before, after, ms) =>
        log.debug("returned freed memory to the OS: resident {before} -> {after} MB in {ms} ms", {
          before: (before / 2 ** 20).toFixed(1),
          after: (after / 2 ** 20).toFixed(1),
          ms: ms.toFixed(1),
        }),
    });
    signal.addEventListener("abort", () => trimmer.stop(), { once: true });
    // Only the LoadBalancer allocator writes through client-node; the rest of the agent never loads it.
    let api: ControllerContext["api"];
    if (!o.manifests && enabled.includes("loadbalancer")) {
      await import("../observe/quiet_node.ts"); // before client-node loads
      api = (await import("../watch/client_node_config.ts")).loadKubeConfig({
        kubeconfig: o.kubeconfig,
        master: o.master,
      });
    }
    const controllers: Controller[] = [];
    for (const c of enabled) {
      const ctx: ControllerContext = {
        options: o,
        runner,
        nodeName: name,
        log: logger(c),
        metrics,
        dryRun: o.dryRun,
        report: io.print,
        api,
        healthNote: (lines) => health.note(c, lines),
        lane: laneFactory({
          controller: c,
          log: logger(c),
          metrics,
          signal,
          beat: (n, at) => health.beat(n, at),
          afterRun: () => trimmer.noteWork(),
        }),
      };
      controllers.push((await CONTROLLERS[c].load()).create(ctx));
    }

    if (o.dryRun) {
      // One pass: each controller plans against the snapshot and prints its transactions.
      const snapshot = source.current();
      for (const c of controllers) {
        io.print(`### ${c.name}: transactions for node ${name} (dry run, nothing was changed)\n`);
        await c.sync(snapshot, signal);
      }
      return;
    }

    const syncTime = metrics.histogram("kube_router_controller_sync_time", "");
    const syncErrors = metrics.counter("kube_router_controller_sync_errors_total", "", ["controller"]);
    const handles = [];
    for (const c of controllers) {
      health.register(c.name, c.syncPeriodMs);
      await c.start?.(signal);
      handles.push(runController(c, source, {
        signal,
        onSynced: (n, at) => {
          health.beat(n, at);
          trimmer.noteWork();
        },
        onSyncDuration: (_n, s) => syncTime.observe(s),
        onError: (n, err, retry) => {
          syncErrors.inc({ controller: n });
          trimmer.noteWork();
          logger(n).error("sync failed, retrying in {retry} ms: {error}", {
            retry,
            error: err instanceof Error ? err.message : String(err),
          });
        },
      }));
    }
    await Promise.all(handles.map((h) => h.done));
    for (const c of controllers) await c.stop?.();
  } catch (e) {
    failure = e;
    throw e;
  } finally {
    stopHttp();
    await Promise.allSettled(servers.map((s) => s.finished));
    await source.close();
    log.info("kube-router stopped ({reason})", {
      reason: signal.aborted
        ? String((signal.reason as Error)?.message ?? signal.reason)
        : failure
        ? "start-up failed"
        : "controllers finished",
    });
  }
}

/**
 * `kube-router cleanup` / `--cleanup-config`: the cleanup of every controller the `--run-*` flags
 * enable (`--run-router=false` leaves the router's state, bridge and CNI file alone), in reverse
 * start order, all attempted even if one fails.
 */
export async function runCleanup(o: AgentOptions, io: RunIO): Promise<void> {
  const runner = makeRunner(o, io);
  const metrics = new MetricsRegistry();
  const failures: string[] = [];
  const enabled = new Set(enabledControllers("cleanup", o));
  if (enabled.size === 0) throw new ConfigError("cleanup: every --run-* flag is false, nothing to clean up");
  for (
    const c of (["loadbalancer", "firewall", "proxy", "router"] as ControllerName[]).filter((c) =>
      enabled.has(c)
    )
  ) {
    const ctx: ControllerContext = {
      options: o,
      runner,
      nodeName: nodeName(o),
      log: logger(c),
      metrics,
      dryRun: o.dryRun,
    };
    try {
      await (await CONTROLLERS[c].load()).cleanup(ctx);
      if (o.dryRun) {
        logger("cleanup").info("{controller}: would remove everything it had programmed (dry run)", {
          controller: c,
        });
      } else logger("cleanup").info("{controller}: removed everything it had programmed", { controller: c });
    } catch (e) {
      failures.push(`${c}: ${(e as Error).message}`);
    }
  }
  if (failures.length) throw new Error(`cleanup incomplete: ${failures.join("; ")}`);
}

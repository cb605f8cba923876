/**
 * The contract between the agent's spine and each controller (proxy, firewall, router,
 * loadbalancer). The spine owns watching, scheduling (periodic resync + event-driven syncs,
 * coalesced, retried with back-off: see `runner.ts`), health and metrics; a controller owns
 * planning and applying its slice of kernel state.
 *
 * @module
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { AgentOptions } from "../options/mod.ts";
import type { Runner } from "../kernel/exec.ts";
import type { Logger } from "../observe/log.ts";
import type { MetricsRegistry } from "../observe/metrics.ts";
import type { ClusterSnapshot, ResourceKind } from "../watch/types.ts";
import type { LaneFactory } from "./runner.ts";

/** What every controller is built with. */
export interface ControllerContext {
  options: AgentOptions;
  /** Every kernel command goes through this (a `DryRunRunner` under `--dry-run`). */
  runner: Runner;
  /** The node this agent plays (`--hostname-override`, else `NODE_NAME`, else the hostname). */
  nodeName: string;
  log: Logger;
  metrics: MetricsRegistry;
  dryRun: boolean;
  /**
   * Under `--dry-run`, where a controller prints what it would do that is not a kernel command
   * (the BGP speaker's configuration, peers and advertisements). Stdout.
   */
  report?: (text: string) => void;
  /** Lines shown under `/healthz` without making it unhealthy (objects a tool refused). */
  healthNote?: (lines: string[]) => void;
  /**
   * Opens a named lane (`runner.ts`): the only way a controller schedules work of its own (a
   * drain deadline, an address change, learned routes), wired to health and metrics once. Absent
   * (tests): `openLane` wires one to `log` and `metrics`.
   */
  lane?: LaneFactory;
  /** Writes to the Kubernetes API (LB status, leases); absent with `--manifests`. */
  api?: KubeConfig;
}

export interface Controller {
  /** "proxy" | "firewall" | "router" | "loadbalancer". */
  readonly name: string;
  /** Periodic full resync period in ms (from the controller's `--*-sync-period` flag). */
  readonly syncPeriodMs: number;
  /** Whether a change of these kinds needs a sync. */
  interestedIn(kinds: ReadonlySet<ResourceKind>): boolean;
  /**
   * Plans from the snapshot and applies the difference. Idempotent; throws (an `ExecError` or a
   * `ConfigError`) on failure, and the runner retries with back-off. A sync that finds nothing to
   * change must run no kernel command that changes anything.
   */
  sync(snapshot: ClusterSnapshot, signal: AbortSignal): Promise<void>;
  /** Long-running parts (a BGP speaker, health-check servers); resolves when started. */
  start?(signal: AbortSignal): Promise<void>;
  /** Stops long-running parts; `graceful` keeps state that must survive a restart (BGP GR). */
  stop?(): Promise<void>;
}

/** Removes everything the controller ever programmed (`kube-router cleanup`), without a snapshot. */
export type CleanupFn = (ctx: ControllerContext) => Promise<void>;

/**
 * `--disable-source-dest-check`: EC2 drops packets whose source or destination is not the
 * instance's own address unless the instance's source/destination check is off, and pod traffic
 * routed through nodes is exactly that. Like upstream, every agent disables it for every node
 * whose `spec.providerID` starts with `aws`: once when it first sees the node (at start, and for
 * a node added later). Unlike upstream, a failed call is retried with back-off (upstream logs
 * and waits for the next node event), and a node that leaves and comes back is done again.
 *
 * Never blocks or fails the routing sync: `update()` returns at once, the work runs in the
 * background, one pass at a time; errors are logged with the node name and AWS's error code.
 *
 * @module
 */
import type { Logger } from "../../../observe/log.ts";
import type { NodeInfo } from "../../../watch/types.ts";
import { disableSourceDestCheck, Ec2Error } from "./ec2.ts";
import { ec2Endpoint, type Env, processEnv } from "./env.ts";
import { CredentialSource, type Fetch } from "./imds.ts";
import { parseAwsProviderId } from "./provider_id.ts";

/** Injection points (all have production defaults). */
export interface SourceDestCheckDeps {
  env?: Env;
  fetch?: Fetch;
  /** Milliseconds clock for back-off and credential expiry. */
  now?: () => number;
  /** First retry delay, ms (default 2000); doubles per failure up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  /** Default 300000 (5 min). */
  maxBackoffMs?: number;
}

/** Options of `SourceDestCheck`. */
export interface SourceDestCheckOptions extends SourceDestCheckDeps {
  log: Logger;
  /** `--dry-run`: report what would be called, call nothing. */
  dryRun?: boolean;
  report?: (text: string) => void;
}

/** What one pass did for one node (returned by `reconcile`, for tests and logs). */
export type NodeOutcome =
  | { node: string; result: "disabled"; instanceId: string }
  | { node: string; result: "failed"; instanceId?: string; error: Error; retryInMs: number }
  | { node: string; result: "waiting"; instanceId: string; retryInMs: number }
  | { node: string; result: "would-disable"; instanceId: string };

interface Failure {
  attempts: number;
  nextAt: number;
  key: string;
}

/** Disables the EC2 source/dest check of AWS nodes, once each, in the background. */
export class SourceDestCheck {
  /** Node name → "<instance id>" already disabled (a replaced instance is done again). */
  readonly #done = new Map<string, string>();
  readonly #failures = new Map<string, Failure>();
  /** Malformed providerIDs already logged (logged once per value). */
  readonly #badLogged = new Map<string, string>();
  readonly #creds: CredentialSource;
  readonly #env: Env;
  readonly #now: () => number;
  #nodes: NodeInfo[] = [];
  #running: Promise<NodeOutcome[]> | null = null;
  #again = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** Counters (tests, logs). */
  readonly stats = { calls: 0, failures: 0, passes: 0 };

  constructor(readonly o: SourceDestCheckOptions) {
    this.#env = o.env ?? processEnv;
    this.#now = o.now ?? Date.now;
    this.#creds = new CredentialSource({ env: this.#env, fetch: o.fetch, now: this.#now });
  }

  /** The nodes of the latest snapshot; starts a background pass. Never throws, never waits. */
  update(nodes: Iterable<NodeInfo>): void {
    if (this.#closed) return;
    this.#nodes = [...nodes];
    this.#kick();
  }

  /** Waits until no pass is running or queued (tests). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running.catch(() => {});
  }

  /** Stops retries; a running pass finishes. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #kick(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    const run = (async () => {
      let out: NodeOutcome[] = [];
      do {
        this.#again = false;
        out = await this.reconcile(this.#nodes);
      } while (this.#again && !this.#closed);
      return out;
    })();
    this.#running = run;
    run.catch((e) => this.o.log.error("router aws: {error}", { error: (e as Error).message })).finally(() => {
      if (this.#running === run) this.#running = null;
    });
  }

  /**
   * One pass over `nodes`: every AWS node not yet done and not backing off gets one
   * ModifyInstanceAttribute call. Does not throw: failures are in the outcomes and the log.
   */
  async reconcile(nodes: readonly NodeInfo[]): Promise<NodeOutcome[]> {
    this.stats.passes++;
    const out: NodeOutcome[] = [];
    const present = new Set(nodes.map((n) => n.name));
    // A node that left is forgotten: if it comes back it is done again (it may be a new instance).
    for (const name of [...this.#done.keys()]) if (!present.has(name)) this.#done.delete(name);
    for (const name of [...this.#failures.keys()]) if (!present.has(name)) this.#failures.delete(name);
    const now = this.#now();
    for (const n of [...nodes].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) {
      let ref;
      try {
        ref = parseAwsProviderId(n.providerID);
      } catch (e) {
        if (this.#badLogged.get(n.name) !== n.providerID) {
          this.#badLogged.set(n.name, n.providerID);
          this.o.log.error("router aws: node {node}: source/dest check left alone: {error}", {
            node: n.name,
            error: (e as Error).message,
          });
        }
        continue;
      }
      if (!ref) continue; // not an EC2 instance: nothing to do
      if (this.#done.get(n.name) === ref.instanceId) continue;
      const f = this.#failures.get(n.name);
      if (f && f.key === ref.instanceId && f.nextAt > now) {
        out.push({ node: n.name, result: "waiting", instanceId: ref.instanceId, retryInMs: f.nextAt - now });
        continue;
      }
      if (this.o.dryRun) {
        this.o.report?.(
          `# aws: would disable the EC2 source/dest check of ${ref.instanceId} (node ${n.name})\n`,
        );
        this.#done.set(n.name, ref.instanceId);
        out.push({ node: n.name, result: "would-disable", instanceId: ref.instanceId });
        continue;
      }
      try {
        const region = ref.region ?? await this.#creds.region();
        const credentials = await this.#creds.credentials();
        this.stats.calls++;
        await disableSourceDestCheck({
          endpoint: ec2Endpoint(this.#env, region),
          region,
          credentials,
          instanceId: ref.instanceId,
          fetch: this.o.fetch,
          now: new Date(this.#now()),
        });
        this.#done.set(n.name, ref.instanceId);
        this.#failures.delete(n.name);
        this.o.log.info("router aws: node {node}: disabled the EC2 source/dest check of {instance}", {
          node: n.name,
          instance: ref.instanceId,
        });
        out.push({ node: n.name, result: "disabled", instanceId: ref.instanceId });
      } catch (e) {
        const err = e as Error;
        this.stats.failures++;
        if (e instanceof Ec2Error && (e.status === 401 || e.status === 403)) this.#creds.invalidate();
        const attempts = (f && f.key === ref.instanceId ? f.attempts : 0) + 1;
        const retryInMs = Math.min(
          (this.o.initialBackoffMs ?? 2000) * 2 ** (attempts - 1),
          this.o.maxBackoffMs ?? 300_000,
        );
        this.#failures.set(n.name, { attempts, nextAt: now + retryInMs, key: ref.instanceId });
        this.o.log.error(
          "router aws: node {node}: disabling the EC2 source/dest check of {instance} failed ({code}): {error}; retry in {retry} s",
          {
            node: n.name,
            instance: ref.instanceId,
            code: e instanceof Ec2Error ? e.code ?? `HTTP ${e.status ?? "-"}` : err.name,
            error: err.message,
            retry: Math.round(retryInMs / 1000),
          },
        );
        out.push({ node: n.name, result: "failed", instanceId: ref.instanceId, error: err, retryInMs });
      }
    }
    this.#scheduleRetry();
    return out;
  }

  /** A timer for the earliest pending retry, so a failure is retried even without node events. */
  #scheduleRetry(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed || this.#failures.size === 0) return;
    const next = Math.min(...[...this.#failures.values()].map((f) => f.nextAt));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#kick();
    }, Math.max(0, next - this.#now()));
    // Retries must not keep the process alive on their own.
    Deno.unrefTimer(this.#timer as unknown as number);
  }
}

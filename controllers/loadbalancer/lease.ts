/**
 * Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it:
 * the holder renews every `retryPeriod`; it steps down when no renewal succeeded within
 * `renewDeadline`; others take the lease over once `renewTime + leaseDuration` has passed.
 * Writes use the lease's resourceVersion, so two candidates cannot both win one round (the API
 * server rejects the second write with 409 Conflict).
 *
 * Upstream's settings for the allocator: lease 15 s, renew deadline 10 s, retry 2 s.
 *
 * @module
 */
import "../../observe/quiet_node.ts"; // before client-node loads
import * as k8s from "@kubernetes/client-node";

export interface LeaseTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export const UPSTREAM_TIMING: LeaseTiming = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

export interface LeaderElectorOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  name: string;
  identity: string;
  timing?: LeaseTiming;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log?: (level: "info" | "warning", msg: string) => void;
}

/**
 * A MicroTime as the API server parses it (RFC 3339 with exactly 6 fractional digits); the
 * client library would send a `Date` with 3, which the server rejects. Typed as `Date` because
 * the generated model says so; the serializer passes strings through unchanged.
 */
export function microTime(d: Date | string | undefined): Date {
  const t = d === undefined ? new Date(0) : new Date(d as string);
  return t.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z") as unknown as Date;
}

function code(e: unknown): number | undefined {
  return (e as { code?: number })?.code;
}

/** Runs the election until the signal aborts; releases the lease on exit if held. */
export class LeaderElector {
  #leading = false;
  #lastRenew = 0;
  readonly #api: k8s.CoordinationV1Api;
  readonly #t: LeaseTiming;

  constructor(readonly o: LeaderElectorOptions) {
    this.#api = o.kubeConfig.makeApiClient(k8s.CoordinationV1Api);
    this.#t = o.timing ?? UPSTREAM_TIMING;
  }

  get leading(): boolean {
    return this.#leading;
  }

  /** One attempt to acquire or renew; returns whether we hold the lease afterwards. */
  async tryAcquireOrRenew(now = new Date()): Promise<boolean> {
    const { namespace, name, identity } = this.o;
    const durS = Math.ceil(this.#t.leaseDurationMs / 1000);
    let lease: k8s.V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace });
    } catch (e) {
      if (code(e) !== 404) throw e;
      await this.#api.createNamespacedLease({
        namespace,
        body: {
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: durS,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        },
      });
      return true;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    const renew = spec.renewTime ? new Date(spec.renewTime as unknown as string).getTime() : 0;
    const expired = renew + (spec.leaseDurationSeconds ?? durS) * 1000 < now.getTime();
    if (holder !== "" && holder !== identity && !expired) return false;
    const mine = holder === identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: durS,
      renewTime: microTime(now),
      acquireTime: microTime(mine ? spec.acquireTime : now),
      leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
    };
    await this.#api.replaceNamespacedLease({ name, namespace, body: lease });
    return true;
  }

  /** The election loop. */
  async run(signal: AbortSignal): Promise<void> {
    const sleep = (ms: number) =>
      new Promise<void>((r) => {
        const t = setTimeout(r, ms);
        signal.addEventListener("abort", () => {
          clearTimeout(t);
          r();
        }, { once: true });
      });
    while (!signal.aborted) {
      let held = false;
      try {
        held = await this.tryAcquireOrRenew();
      } catch (e) {
        if (code(e) !== 409) this.o.log?.("warning", `lease ${this.o.name}: ${(e as Error).message}`);
      }
      const now = Date.now();
      if (held) {
        this.#lastRenew = now;
        if (!this.#leading) {
          this.#leading = true;
          this.o.log?.("info", `lease ${this.o.name}: ${this.o.identity} is now the leader`);
          this.o.onStartedLeading();
        }
      } else if (this.#leading && now - this.#lastRenew > this.#t.renewDeadlineMs) {
        this.#leading = false;
        this.o.log?.("warning", `lease ${this.o.name}: ${this.o.identity} lost the lease`);
        this.o.onStoppedLeading();
      } else if (this.#leading && !held) {
        // A definite loss (someone else holds it now) also ends leadership at once.
        const other = await this.#holder().catch(() => this.o.identity);
        if (other !== this.o.identity) {
          this.#leading = false;
          this.o.onStoppedLeading();
        }
      }
      await sleep(this.#t.retryPeriodMs);
    }
    if (this.#leading) {
      this.#leading = false;
      this.o.onStoppedLeading();
      await this.release().catch(() => {});
    }
  }

  async #holder(): Promise<string> {
    const l = await this.#api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
    return l.spec?.holderIdentity ?? "";
  }

  /** Gives the lease up (empty holder), so a successor need not wait for expiry. */
  async release(): Promise<void> {
    const lease = await this.#api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
    if (lease.spec?.holderIdentity !== this.o.identity) return;
    lease.spec = {
      ...lease.spec,
      holderIdentity: "",
      leaseDurationSeconds: 1,
      renewTime: microTime(new Date(0)),
      acquireTime: microTime(lease.spec.acquireTime),
    };
    await this.#api.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: lease });
  }
}

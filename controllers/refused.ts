/**
 * Bookkeeping of objects left out because a kernel tool refused what was rendered for them (the
 * proxy's and the router's containment; the firewall keeps its own in firewall/contain.ts). One
 * refused object must not keep a controller stale: the applier names the object, the controller
 * leaves it out, applies the rest, and reports it here: one error line naming object, field and
 * value, `kube_router_<controller>_objects_refused_total{kind}`, the gauge of objects currently
 * left out, and a `/healthz` note. An object gets another chance when it changes (its instance in
 * the snapshot is no longer the refused one), when it goes away, and at the periodic resync.
 *
 * @module
 */
import type { ControllerContext } from "./controller.ts";

/** One object left out: what was refused, and the instance that was (a changed object is retried). */
export interface RefusedObject {
  /** "Service ns/name", "Node name". */
  object: string;
  /** The field whose value the kernel refused ("spec.clusterIP", "spec.podCIDRs"). */
  field: string;
  value: string;
  /** The tool's message. */
  reason: string;
}

/** Thrown by an applier when the kernel refused part of a batch it could trace to objects. */
export class RefusedObjectsError extends Error {
  constructor(readonly refused: RefusedObject[], options?: ErrorOptions) {
    super(
      `the kernel refused ${
        refused.map((r) => `${r.object} ${r.field} ${JSON.stringify(r.value)}`).join(", ")
      }`,
      options,
    );
    this.name = "RefusedObjectsError";
  }
}

interface Entry extends RefusedObject {
  instance: unknown;
  since: number;
}

export class RefusedObjects {
  readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ctx: ControllerContext,
    /** "proxy" or "router": the metric's and the log line's name. */
    private readonly controller: string,
    /** What leaving an object out means, for the log line. */
    private readonly effect: string,
  ) {}

  /**
   * Drops entries whose object changed or went away (`current` returns the snapshot's instance),
   * and, at the periodic resync (`periodMs` after they were refused), every entry.
   */
  prune(current: (object: string) => unknown, now: number, periodMs: number): void {
    for (const [k, e] of this.entries) {
      if (current(e.object) !== e.instance || now - e.since >= periodMs) this.entries.delete(k);
    }
  }

  has(object: string): boolean {
    return this.entries.has(object);
  }

  /**
   * Records refused objects; returns false when nothing new was learned (an object refused again
   * although left out: the caller must not loop).
   */
  add(refused: readonly RefusedObject[], current: (object: string) => unknown, now: number): boolean {
    let added = false;
    for (const r of refused) {
      if (this.entries.has(r.object)) continue;
      added = true;
      this.entries.set(r.object, { ...r, instance: current(r.object), since: now });
      this.ctx.metrics.counter(
        `kube_router_${this.controller}_objects_refused_total`,
        `Objects left out of the ${this.controller}'s kernel state because a tool refused them`,
      ).inc({ kind: r.object.split(" ")[0] });
      this.ctx.log.error(
        `{object} left out of the ${this.controller}: the kernel refused {field} {value} ({reason}); ` +
          `${this.effect}; the rest is applied, and it is retried when it changes or at the next resync`,
        { object: r.object, field: r.field, value: JSON.stringify(r.value), reason: r.reason },
      );
    }
    return added;
  }

  /** Publishes the gauge and the health note (after every sync). */
  publish(): void {
    this.ctx.metrics.gauge(
      `kube_router_${this.controller}_objects_refused`,
      `Objects currently left out of the ${this.controller}'s kernel state`,
    ).set(this.entries.size);
    this.ctx.healthNote?.(
      [...this.entries.values()].map((e) =>
        `${this.controller}: ${e.object} left out (the kernel refused ${e.field} ${
          JSON.stringify(e.value)
        }): ${e.reason}`
      ),
    );
  }
}

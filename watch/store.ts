/**
 * The snapshot store both sources feed. Changes are staged and published as ONE new immutable
 * snapshot on the next macrotask, so a relist (which fires hundreds of callbacks in one go) or
 * a burst of events becomes one change notification, and no subscriber ever sees a half-applied
 * batch. Nothing is published until every kind has been listed once (`markSynced`).
 *
 * @module
 */
import type { ClusterChange, ClusterSnapshot, ResourceKind } from "./types.ts";
import { emptySnapshot } from "./types.ts";

/** What controllers and the runner read from. */
export interface SnapshotSource {
  /** Resolves once every kind has been listed and the first snapshot is published. */
  readonly ready: Promise<void>;
  current(): ClusterSnapshot;
  subscribe(cb: (change: ClusterChange) => void): () => void;
  close(): Promise<void>;
}

const FIELD: Record<ResourceKind, keyof Omit<ClusterSnapshot, "revision">> = {
  Node: "nodes",
  Pod: "pods",
  Namespace: "namespaces",
  Service: "services",
  EndpointSlice: "endpointSlices",
  NetworkPolicy: "networkPolicies",
};

export const ALL_KINDS: readonly ResourceKind[] = Object.keys(FIELD) as ResourceKind[];

type Staged = Map<ResourceKind, { replace: boolean; entries: Map<string, unknown | null> }>;

export class SnapshotStore implements SnapshotSource {
  private snap: ClusterSnapshot = emptySnapshot();
  private staged: Staged = new Map();
  private subscribers = new Set<(c: ClusterChange) => void>();
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private synced = false;
  private resolveReady!: () => void;
  readonly ready: Promise<void>;

  constructor(private readonly onClose: () => Promise<void> = async () => {}) {
    this.ready = new Promise((r) => (this.resolveReady = r));
  }

  current(): ClusterSnapshot {
    return this.snap;
  }

  subscribe(cb: (change: ClusterChange) => void): () => void {
    this.subscribers.add(cb);
    return () => this.subscribers.delete(cb);
  }

  private stage(kind: ResourceKind) {
    let s = this.staged.get(kind);
    if (!s) {
      s = { replace: false, entries: new Map() };
      this.staged.set(kind, s);
    }
    return s;
  }

  upsert(kind: ResourceKind, key: string, value: unknown): void {
    this.stage(kind).entries.set(key, value);
    this.schedule();
  }

  remove(kind: ResourceKind, key: string): void {
    this.stage(kind).entries.set(key, null);
    this.schedule();
  }

  /** Replaces every object of a kind (a full list or a manifest re-read). */
  replaceAll(kind: ResourceKind, items: ReadonlyMap<string, unknown>): void {
    this.staged.set(kind, { replace: true, entries: new Map(items) });
    this.schedule();
  }

  /** Called once every kind has its initial list: publishing starts now. */
  markSynced(): void {
    this.synced = true;
    this.schedule();
  }

  private schedule() {
    if (!this.synced || this.flushTimer !== undefined) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, 0);
  }

  /** Publishes staged changes now (sources call this; tests may too). */
  flush(): void {
    if (!this.synced) return;
    const kinds = new Set<ResourceKind>();
    const next: Record<string, unknown> = { ...this.snap };
    for (const [kind, { replace, entries }] of this.staged) {
      const field = FIELD[kind];
      const before = this.snap[field] as ReadonlyMap<string, unknown>;
      const map = replace ? new Map<string, unknown>() : new Map(before);
      let changed = false;
      for (const [key, value] of entries) {
        if (value === null) changed = map.delete(key) || changed;
        else {
          // Informers re-deliver unchanged objects (resyncs, relists): only real changes count,
          // and an unchanged object keeps its identity (planners memoise by object).
          const old = before.get(key);
          if (sameJson(old, value)) map.set(key, old);
          else {
            changed = true;
            map.set(key, value);
          }
        }
      }
      if (replace ? !sameMaps(before, map) : changed) {
        next[field] = map;
        kinds.add(kind);
      }
    }
    this.staged = new Map();
    const firstPublish = this.snap.revision === 0;
    if (kinds.size === 0 && !firstPublish) return;
    this.snap = { ...(next as unknown as ClusterSnapshot), revision: this.snap.revision + 1 };
    if (firstPublish) this.resolveReady();
    const change: ClusterChange = { kinds: firstPublish ? new Set(ALL_KINDS) : kinds, snapshot: this.snap };
    for (const cb of this.subscribers) cb(change);
  }

  async close(): Promise<void> {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.subscribers.clear();
    await this.onClose();
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

function sameMaps(a: ReadonlyMap<string, unknown>, b: ReadonlyMap<string, unknown>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of b) if (!sameJson(a.get(k), v)) return false;
  return true;
}

/**
 * List-then-watch of one collection, kept going for the agent's lifetime (client-go's
 * Reflector, without its object cache: the agent keeps only what `watch/convert.ts` makes of an
 * object, never the object itself).
 *
 * - A relist reports every object it saw, then deletes the ones that vanished since the last
 *   list or watch event, so nothing missed while the watch was down survives.
 * - A watch resumes from the last resourceVersion seen (bookmarks included); `410 Gone` (the
 *   version was compacted away) means relist.
 * - Any other failure (API server restart, network drop, a 5xx) retries with capped
 *   exponential back-off; a successful list resets it.
 *
 * @module
 */
import { KubeApiError, type KubeClient, type KubeObject } from "./client.ts";

export interface ReflectorHandlers {
  upsert(obj: KubeObject): void;
  remove(key: string): void;
  /** After each complete list (the first one marks the kind synced). */
  listed(): void;
  /** A failure and the delay before the next try. */
  failed(message: string, retryMs: number): void;
}

export interface ReflectorOptions {
  backoff?: { initialMs: number; maxMs: number };
  /** Watch request timeout, seconds; randomised ×[1, 2) like client-go so watches do not expire together. */
  watchTimeoutS?: number;
}

/** `namespace/name`, or `name` for cluster-scoped objects. */
export function apiKey(obj: KubeObject): string {
  const ns = obj?.metadata?.namespace ?? "";
  const name = obj?.metadata?.name ?? "";
  return ns ? `${ns}/${name}` : name;
}

class Gone extends Error {}

/** Runs until `signal` aborts. */
export async function reflect(
  client: KubeClient,
  path: string,
  h: ReflectorHandlers,
  signal: AbortSignal,
  opts: ReflectorOptions = {},
): Promise<void> {
  const { initialMs, maxMs } = opts.backoff ?? { initialMs: 500, maxMs: 30_000 };
  const known = new Set<string>();
  let delay = initialMs;
  while (!signal.aborted) {
    try {
      const seen = new Set<string>();
      let rv = await client.list(path, (obj) => {
        const k = apiKey(obj);
        seen.add(k);
        h.upsert(obj);
      }, { signal });
      for (const k of known) if (!seen.has(k)) h.remove(k);
      known.clear();
      for (const k of seen) known.add(k);
      h.listed();
      delay = initialMs;
      for (;;) {
        const timeoutSeconds = Math.floor((opts.watchTimeoutS ?? 300) * (1 + Math.random()));
        for await (const ev of client.watch(path, rv, { timeoutSeconds, signal })) {
          if (ev.type === "ERROR") {
            if (ev.object?.code === 410) throw new Gone();
            throw new Error(`watch error: ${ev.object?.message ?? JSON.stringify(ev.object)}`);
          }
          rv = String(ev.object?.metadata?.resourceVersion ?? rv);
          if (ev.type === "BOOKMARK") continue;
          const k = apiKey(ev.object);
          if (ev.type === "DELETED") {
            known.delete(k);
            h.remove(k);
          } else {
            known.add(k);
            h.upsert(ev.object);
          }
        }
        if (signal.aborted) return;
      }
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof Gone || (e instanceof KubeApiError && e.status === 410)) continue; // relist now
      h.failed(e instanceof Error ? e.message : String(e), delay);
      await sleep(delay, signal);
      delay = Math.min(delay * 2, maxMs);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Health as upstream reports it: `GET /healthz` answers 200 `OK` while every running
 * controller has synced within its period (plus a start-up allowance and 1.5 s of grace), and
 * 500 naming the late ones otherwise.
 *
 * @module
 */

export class HealthTracker {
  private controllers = new Map<string, { periodMs: number; lastSync: number | undefined }>();

  constructor(private readonly startedAt: number, private readonly graceMs = 1500) {}

  register(name: string, periodMs: number): void {
    this.controllers.set(name, { periodMs, lastSync: undefined });
  }

  beat(name: string, at: number): void {
    const c = this.controllers.get(name);
    if (c) c.lastSync = at;
  }

  /** Names of controllers that are late; empty when healthy. */
  late(now: number): string[] {
    const out: string[] = [];
    for (const [name, c] of this.controllers) {
      const since = c.lastSync ?? this.startedAt;
      // Before the first sync the allowance is the period itself (upstream's "first interval").
      const allowance = c.periodMs + (c.lastSync === undefined ? c.periodMs : 0) + this.graceMs;
      if (now - since > allowance) out.push(name);
    }
    return out;
  }
}

/** Serves `/healthz` (and, when given, metrics on the same listener if ports coincide). */
export function serveHttp(
  opts: { hostname: string; port: number; signal: AbortSignal; onListen?: (addr: Deno.NetAddr) => void },
  routes: Record<string, () => Response | Promise<Response>>,
): Deno.HttpServer {
  return Deno.serve({
    hostname: opts.hostname || "0.0.0.0",
    port: opts.port,
    signal: opts.signal,
    onListen: (addr) => opts.onListen?.(addr as Deno.NetAddr),
  }, (req) => {
    const path = new URL(req.url).pathname;
    const route = routes[path];
    return route ? route() : new Response("not found\n", { status: 404 });
  });
}

export function healthRoute(tracker: HealthTracker, now: () => number = Date.now): () => Response {
  return () => {
    const late = tracker.late(now());
    return late.length === 0
      ? new Response("OK\n", { status: 200 })
      : new Response(`not synced within period: ${late.join(", ")}\n`, { status: 500 });
  };
}

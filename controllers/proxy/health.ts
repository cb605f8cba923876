/**
 * `healthCheckNodePort` servers for `externalTrafficPolicy: Local` services: an HTTP server per
 * port answering 200 while the service has local endpoints on this node and 503 otherwise, so an
 * external load balancer sends traffic only to nodes that can serve it locally. The body is the
 * JSON kube-proxy returns (`{"service":{"namespace","name"},"localEndpoints":N}`).
 *
 * @module
 */
import type { HealthCheck } from "./types.ts";

/** The response for one health-check request (pure, for tests). */
export function healthResponse(check: HealthCheck | undefined): { status: number; body: string } {
  if (!check) return { status: 404, body: "no such service\n" };
  const [namespace, name] = check.service.split("/");
  return {
    status: check.localEndpoints > 0 ? 200 : 503,
    body: JSON.stringify({ service: { namespace, name }, localEndpoints: check.localEndpoints }) + "\n",
  };
}

/** Starts, updates and stops the per-port servers. */
export class HealthServers {
  #servers = new Map<number, { server: Deno.HttpServer; check: HealthCheck }>();

  /**
   * @param hostname address to listen on ("0.0.0.0" like upstream; tests use 127.0.0.1)
   * @param onError reports a port that cannot be bound (in use) without failing the sync
   */
  constructor(
    private readonly hostname: string,
    private readonly onError: (port: number, e: unknown) => void,
  ) {}

  /** Makes the running servers match `checks`. */
  update(checks: readonly HealthCheck[]): void {
    const want = new Map(checks.map((c) => [c.port, c]));
    for (const [port, s] of this.#servers) {
      if (!want.has(port)) {
        s.server.shutdown();
        this.#servers.delete(port);
      }
    }
    for (const [port, check] of want) {
      const cur = this.#servers.get(port);
      if (cur) {
        cur.check = check;
        continue;
      }
      try {
        const entry = { check, server: undefined as unknown as Deno.HttpServer };
        entry.server = Deno.serve({ hostname: this.hostname, port, onListen: () => {} }, () => {
          const r = healthResponse(entry.check);
          return new Response(r.body, { status: r.status, headers: { "content-type": "application/json" } });
        });
        this.#servers.set(port, entry);
      } catch (e) {
        this.onError(port, e);
      }
    }
  }

  ports(): number[] {
    return [...this.#servers.keys()].sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#servers.values()].map((s) => s.server.shutdown()));
    this.#servers.clear();
  }
}

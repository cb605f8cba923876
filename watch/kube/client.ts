/**
 * A small Kubernetes REST client over Deno's own `fetch`: GET, paginated LIST and a streamed
 * WATCH, returning the API server's JSON exactly as it is on the wire. The agent reads objects
 * field by field (`watch/convert.ts`), so it needs no typed models: a model layer renames
 * reserved words (`from` became `_from`, `except` became `_except` in client-node's), and one
 * missed rename once made every `from:` peer of every NetworkPolicy disappear. It also keeps the
 * agent lean (client-node's generated API alone costs about 60 MB of resident memory).
 *
 * @module
 */
import type { KubeEndpoint } from "./config.ts";

/** A non-2xx answer from the API server, with its `Status` reason when it sent one. */
export class KubeApiError extends Error {
  constructor(readonly status: number, readonly path: string, readonly reason: string, message: string) {
    super(`${path}: ${status} ${reason ? `${reason}: ` : ""}${message}`);
    this.name = "KubeApiError";
  }
}

// deno-lint-ignore no-explicit-any
export type KubeObject = any;

/** One event of a watch stream. */
export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: KubeObject;
}

/** How often a token file is re-read (client-go: every minute). */
const TOKEN_REFRESH_MS = 60_000;

export class KubeClient {
  readonly #http: Deno.HttpClient;
  #token: string | undefined;
  #tokenReadAt = 0;

  constructor(readonly endpoint: KubeEndpoint) {
    const o: Deno.CreateHttpClientOptions = {};
    if (endpoint.caPem) o.caCerts = [endpoint.caPem];
    if (endpoint.certPem && endpoint.keyPem) {
      (o as { cert?: string; key?: string }).cert = endpoint.certPem;
      (o as { cert?: string; key?: string }).key = endpoint.keyPem;
    }
    this.#http = Deno.createHttpClient(o);
    this.#token = endpoint.token;
  }

  #headers(extra: Record<string, string> = {}): Headers {
    const h = new Headers({ accept: "application/json", "user-agent": "kube-router-deno", ...extra });
    const { tokenFile } = this.endpoint;
    if (tokenFile && Date.now() - this.#tokenReadAt > TOKEN_REFRESH_MS) {
      try {
        this.#token = Deno.readTextFileSync(tokenFile).trim();
        this.#tokenReadAt = Date.now();
      } catch {
        // Keep the last token: a rotation in progress must not cut the agent off.
      }
    }
    if (this.#token) h.set("authorization", `Bearer ${this.#token}`);
    return h;
  }

  async #fetch(path: string, init: RequestInit & { signal?: AbortSignal } = {}): Promise<Response> {
    const res = await fetch(this.endpoint.server + path, {
      ...init,
      headers: this.#headers(init.headers as Record<string, string> | undefined),
      client: this.#http,
    } as RequestInit);
    if (res.ok) return res;
    const text = await res.text().catch(() => "");
    let reason = "", message = text.slice(0, 300);
    try {
      const s = JSON.parse(text);
      reason = String(s?.reason ?? "");
      message = String(s?.message ?? message);
    } catch { /* not a Status */ }
    throw new KubeApiError(res.status, path, reason, message);
  }

  /** GET one object or list; undefined on 404. */
  async get(path: string, signal?: AbortSignal): Promise<KubeObject | undefined> {
    try {
      return await (await this.#fetch(path, { signal })).json();
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** Sends a JSON body (`PUT`, `POST`, merge-`PATCH`); returns the answer. */
  async send(
    method: "PUT" | "POST" | "PATCH",
    path: string,
    body: unknown,
    signal?: AbortSignal,
  ): Promise<KubeObject> {
    const type = method === "PATCH" ? "application/merge-patch+json" : "application/json";
    const res = await this.#fetch(path, {
      method,
      body: JSON.stringify(body),
      headers: { "content-type": type },
      signal,
    });
    return await res.json();
  }

  /**
   * Lists a collection in pages of `limit`, calling `onItem` for each object as its page
   * arrives (pages are not kept); returns the list's resourceVersion, to watch from.
   */
  async list(
    path: string,
    onItem: (obj: KubeObject) => void,
    opts: { limit?: number; signal?: AbortSignal } = {},
  ): Promise<string> {
    let cont = "";
    for (;;) {
      const q = new URLSearchParams({ limit: String(opts.limit ?? 500) });
      if (cont) q.set("continue", cont);
      const page = await (await this.#fetch(`${path}?${q}`, { signal: opts.signal })).json();
      for (const item of page?.items ?? []) onItem(item);
      cont = String(page?.metadata?.continue ?? "");
      if (!cont) return String(page?.metadata?.resourceVersion ?? "");
    }
  }

  /**
   * Watches a collection from `resourceVersion`, yielding each event as its line arrives. Ends
   * when the server closes the stream (after `timeoutSeconds`) or the signal aborts.
   */
  async *watch(
    path: string,
    resourceVersion: string,
    opts: { timeoutSeconds?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<WatchEvent> {
    const q = new URLSearchParams({
      watch: "1",
      allowWatchBookmarks: "true",
      resourceVersion,
      timeoutSeconds: String(opts.timeoutSeconds ?? 300),
    });
    const res = await this.#fetch(`${path}?${q}`, { signal: opts.signal });
    if (!res.body) return;
    const lines = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await lines.read();
        if (done) break;
        buf += value;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) yield JSON.parse(line) as WatchEvent;
        }
      }
    } finally {
      await lines.cancel().catch(() => {});
    }
  }

  close(): void {
    this.#http.close();
  }
}

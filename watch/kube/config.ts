/**
 * Where the agent's Kubernetes client connects and how it authenticates, resolved the way
 * upstream does: `--kubeconfig` over in-cluster (the ServiceAccount files, when
 * `KUBERNETES_SERVICE_HOST` is set) over `--master` alone; `--master` also overrides the
 * kubeconfig's server.
 *
 * A kubeconfig's current context may use a CA, client certificate and key (inline `-data` or
 * files, relative to the kubeconfig's folder), a bearer token or a token file. Anything else
 * (exec plugins, auth providers, basic auth, skipping TLS verification) is refused with a
 * `ConfigError` that names the field: the agent never quietly connects with less security
 * than it was configured for.
 *
 * @module
 */
import { ConfigError } from "../../errors/mod.ts";
import { parseBlockYaml } from "./block_yaml.ts";

/** A resolved connection: everything the HTTP client needs. */
export interface KubeEndpoint {
  /** `https://host:port` (no trailing slash). */
  server: string;
  /** PEM of the CA bundle to trust; undefined trusts the system roots. */
  caPem?: string;
  /** PEM client certificate and key, for x509 authentication. */
  certPem?: string;
  keyPem?: string;
  /** A bearer token, fixed. */
  token?: string;
  /** A file holding a bearer token, re-read as it rotates (ServiceAccount tokens do, hourly). */
  tokenFile?: string;
  /** Where this came from, for error messages: `kubeconfig /path (context x)`, `in-cluster`, `--master`. */
  origin: string;
}

export interface EndpointOptions {
  kubeconfig?: string;
  master?: string;
}

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

// deno-lint-ignore no-explicit-any
type Obj = any;

function named(list: unknown, name: string, what: string, origin: string): Obj {
  const hit = (Array.isArray(list) ? list : []).find((e: Obj) => e?.name === name);
  if (!hit) throw new ConfigError(`${origin}: no ${what} named ${JSON.stringify(name)}`);
  return hit[what] ?? {};
}

/** Reads a file the configuration names; `origin` (where the name came from) may be empty. */
function readFile(path: string, field: string, origin: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    const where = origin ? `${origin}: ` : "";
    throw new ConfigError(
      `${where}${field} ${JSON.stringify(path)} cannot be read: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
}

function base64Text(v: unknown, field: string, origin: string): string {
  try {
    return new TextDecoder().decode(Uint8Array.from(atob(String(v)), (c) => c.charCodeAt(0)));
  } catch (e) {
    throw new ConfigError(`${origin}: ${field} is not base64`, { cause: e });
  }
}

/** Inline `<field>-data` (base64) or the file `<field>` (relative to `dir`), or undefined. */
function pem(o: Obj, field: string, dir: string, origin: string): string | undefined {
  if (o?.[`${field}-data`]) return base64Text(o[`${field}-data`], `${field}-data`, origin);
  if (o?.[field]) {
    const p = String(o[field]);
    return readFile(p.startsWith("/") ? p : `${dir}/${p}`, field, origin);
  }
  return undefined;
}

function trimServer(s: string, origin: string): string {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new ConfigError(
      `${origin}: server ${JSON.stringify(s)} is not a URL such as https://10.0.0.1:6443`,
    );
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") {
    throw new ConfigError(`${origin}: server ${JSON.stringify(s)} must be an https:// (or http://) URL`);
  }
  return s.replace(/\/+$/, "");
}

/** Resolves a kubeconfig file's current context (pure but for reading the files it names). */
export async function endpointFromKubeconfig(path: string): Promise<KubeEndpoint> {
  const text = readFile(path, "--kubeconfig", "");
  let doc: Obj;
  try {
    // The full YAML parser is loaded only for a kubeconfig outside the plain block subset.
    doc = parseBlockYaml(text) ?? (await import("./full_yaml.ts")).parseFullYaml(text);
  } catch (e) {
    throw new ConfigError(`kubeconfig ${path}: not YAML: ${(e as Error).message}`, { cause: e });
  }
  const ctxName = String(doc?.["current-context"] ?? "");
  let origin = `kubeconfig ${path}`;
  if (!ctxName) throw new ConfigError(`${origin}: current-context is not set`);
  origin += ` (context ${ctxName})`;
  const ctx = named(doc.contexts, ctxName, "context", origin);
  const cluster = named(doc.clusters, String(ctx.cluster ?? ""), "cluster", origin);
  const user = ctx.user ? named(doc.users, String(ctx.user), "user", origin) : {};
  const dir = path.includes("/") ? path.replace(/\/[^/]*$/, "") || "/" : ".";
  for (const f of ["exec", "auth-provider", "username", "password"]) {
    if (user?.[f] !== undefined) {
      throw new ConfigError(
        `${origin}: users[].user.${f} is not supported by kube-router; use a client certificate or a token`,
      );
    }
  }
  if (cluster["insecure-skip-tls-verify"] === true) {
    throw new ConfigError(
      `${origin}: clusters[].cluster.insecure-skip-tls-verify is not supported: give certificate-authority(-data)`,
    );
  }
  if (!cluster.server) throw new ConfigError(`${origin}: clusters[].cluster.server is missing`);
  const ep: KubeEndpoint = { server: trimServer(String(cluster.server), origin), origin };
  ep.caPem = pem(cluster, "certificate-authority", dir, origin);
  ep.certPem = pem(user, "client-certificate", dir, origin);
  ep.keyPem = pem(user, "client-key", dir, origin);
  if ((ep.certPem === undefined) !== (ep.keyPem === undefined)) {
    throw new ConfigError(
      `${origin}: a client certificate needs its key (client-certificate and client-key)`,
    );
  }
  if (user.token) ep.token = String(user.token);
  else if (user.tokenFile) {
    const p = String(user.tokenFile);
    ep.tokenFile = p.startsWith("/") ? p : `${dir}/${p}`;
    readFile(ep.tokenFile, "tokenFile", origin);
  }
  return ep;
}

/** The in-cluster endpoint: the `kubernetes` Service's address and the pod's ServiceAccount. */
export function inClusterEndpoint(
  env: (k: string) => string | undefined = (k) => Deno.env.get(k),
): KubeEndpoint {
  const host = env("KUBERNETES_SERVICE_HOST") ?? "";
  const port = env("KUBERNETES_SERVICE_PORT") || "443";
  const origin = "in-cluster configuration";
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    caPem: readFile(`${SA_DIR}/ca.crt`, "ServiceAccount CA", origin),
    tokenFile: `${SA_DIR}/token`,
    origin,
  };
}

/** Resolves the endpoint from the flags and the environment, as upstream does. */
export async function resolveEndpoint(
  opts: EndpointOptions,
  env: (k: string) => string | undefined = (k) => Deno.env.get(k),
): Promise<KubeEndpoint> {
  let ep: KubeEndpoint;
  if (opts.kubeconfig) ep = await endpointFromKubeconfig(opts.kubeconfig);
  else if (env("KUBERNETES_SERVICE_HOST")) ep = inClusterEndpoint(env);
  else if (opts.master) ep = { server: trimServer(opts.master, "--master"), origin: "--master" };
  else {
    throw new ConfigError(
      "cannot load Kubernetes client configuration: no --kubeconfig, no --master and not running in a cluster " +
        "(KUBERNETES_SERVICE_HOST unset)",
    );
  }
  if (opts.master) ep = { ...ep, server: trimServer(opts.master, "--master") };
  return ep;
}

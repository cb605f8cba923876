/**
 * Credentials and region: static ones from the environment (`AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`), else the instance role's temporary
 * credentials and the placement region from the instance metadata service, IMDSv2 only
 * (`PUT /latest/api/token`, then GETs with `X-aws-ec2-metadata-token`). No IMDSv1 fallback:
 * nodes that require tokens (the recommended setting) would refuse it anyway.
 *
 * @module
 */
import { type Env, envRegion, imdsDisabled, imdsEndpoint } from "./env.ts";
import type { AwsCredentials } from "./sigv4.ts";

/** Something went wrong talking to IMDS or reading its answer. */
export class ImdsError extends Error {
  override name = "ImdsError";
}

/** fetch as we use it (injectable). */
export type Fetch = (input: string | URL, init?: RequestInit) => Promise<Response>;

const TOKEN_TTL_S = 21600;
/** Refresh temporary credentials this long before they expire. */
const REFRESH_BEFORE_MS = 5 * 60_000;

/** Options of `CredentialSource`. */
export interface CredentialSourceOptions {
  env: Env;
  fetch?: Fetch;
  now?: () => number;
  /** Per IMDS request, ms (default 2000: IMDS answers in milliseconds or not at all). */
  timeoutMs?: number;
}

/** Resolves (and caches) credentials and the region. */
export class CredentialSource {
  #token: { value: string; expires: number } | null = null;
  #creds: AwsCredentials | null = null;
  #region: string | null = null;
  readonly #fetch: Fetch;
  readonly #now: () => number;
  /** IMDS requests made (tests). */
  imdsRequests = 0;

  constructor(readonly o: CredentialSourceOptions) {
    this.#fetch = o.fetch ?? fetch;
    this.#now = o.now ?? Date.now;
  }

  /** Environment credentials when both keys are set, else the instance role's (cached). */
  async credentials(): Promise<AwsCredentials> {
    const env = this.o.env;
    const id = env("AWS_ACCESS_KEY_ID"), secret = env("AWS_SECRET_ACCESS_KEY");
    if (id && secret) {
      const token = env("AWS_SESSION_TOKEN");
      return { accessKeyId: id, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}) };
    }
    const c = this.#creds;
    if (c && (!c.expiration || c.expiration.getTime() - REFRESH_BEFORE_MS > this.#now())) return c;
    const roles = (await this.#get("/latest/meta-data/iam/security-credentials/")).split("\n")
      .map((l) => l.trim()).filter((l) => l !== "");
    if (roles.length === 0) {
      throw new ImdsError("IMDS: the instance has no IAM role (security-credentials/ is empty)");
    }
    const path = `/latest/meta-data/iam/security-credentials/${encodeURIComponent(roles[0])}`;
    const text = await this.#get(path);
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(text);
    } catch (e) {
      throw new ImdsError(`IMDS ${path}: not JSON: ${JSON.stringify(text.slice(0, 80))}`, { cause: e });
    }
    if (j.Code !== undefined && j.Code !== "Success") {
      throw new ImdsError(`IMDS ${path}: Code ${JSON.stringify(j.Code)}: ${String(j.Message ?? "")}`);
    }
    if (typeof j.AccessKeyId !== "string" || typeof j.SecretAccessKey !== "string") {
      throw new ImdsError(`IMDS ${path}: AccessKeyId/SecretAccessKey missing`);
    }
    const exp = typeof j.Expiration === "string" ? new Date(j.Expiration) : undefined;
    this.#creds = {
      accessKeyId: j.AccessKeyId,
      secretAccessKey: j.SecretAccessKey,
      ...(typeof j.Token === "string" ? { sessionToken: j.Token } : {}),
      ...(exp && !isNaN(exp.getTime()) ? { expiration: exp } : {}),
    };
    return this.#creds;
  }

  /** `AWS_REGION`/`AWS_DEFAULT_REGION`, else IMDS `placement/region` (cached). */
  async region(): Promise<string> {
    const r = envRegion(this.o.env);
    if (r) return r;
    if (this.#region) return this.#region;
    const text = (await this.#get("/latest/meta-data/placement/region")).trim();
    if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(text)) {
      throw new ImdsError(`IMDS placement/region: ${JSON.stringify(text)} is not a region name`);
    }
    this.#region = text;
    return text;
  }

  /** Forgets cached credentials (after EC2 rejected them). */
  invalidate(): void {
    this.#creds = null;
  }

  async #request(method: string, path: string, headers: Record<string, string>): Promise<string> {
    if (imdsDisabled(this.o.env)) {
      throw new ImdsError(`IMDS is disabled (AWS_EC2_METADATA_DISABLED=true) and ${path} is needed`);
    }
    const url = imdsEndpoint(this.o.env) + path;
    this.imdsRequests++;
    let res: Response;
    try {
      res = await this.#fetch(url, {
        method,
        headers,
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 2000),
      });
    } catch (e) {
      throw new ImdsError(`IMDS ${method} ${url}: ${(e as Error).message}`, { cause: e });
    }
    const body = await res.text();
    if (!res.ok) {
      throw new ImdsError(`IMDS ${method} ${url}: HTTP ${res.status} ${body.slice(0, 120)}`.trim());
    }
    return body;
  }

  async #get(path: string): Promise<string> {
    const now = this.#now();
    if (!this.#token || this.#token.expires <= now) {
      const value = await this.#request("PUT", "/latest/api/token", {
        "X-aws-ec2-metadata-token-ttl-seconds": String(TOKEN_TTL_S),
      });
      // Renew a minute early so a token never expires between our PUT and GET.
      this.#token = { value: value.trim(), expires: now + (TOKEN_TTL_S - 60) * 1000 };
    }
    try {
      return await this.#request("GET", path, { "X-aws-ec2-metadata-token": this.#token.value });
    } catch (e) {
      // 401: the token was rejected (IMDS restarted, clock jump); get a new one next time.
      if (/HTTP 401/.test((e as Error).message)) this.#token = null;
      throw e;
    }
  }
}

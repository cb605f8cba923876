/**
 * AWS Signature Version 4 (header form) with WebCrypto only: HMAC-SHA256 and SHA-256 from
 * `crypto.subtle`, no AWS SDK. Enough for the EC2 Query API (`POST /` with a form body); checked
 * against AWS's published test-suite vectors in `sigv4_test.ts`.
 *
 * Steps (AWS General Reference, "Create a signed AWS API request"): canonical request →
 * string to sign (`AWS4-HMAC-SHA256`, timestamp, scope, hash of the canonical request) →
 * signing key (HMAC chain over date, region, service, "aws4_request") → signature.
 *
 * @module
 */

/** Access key, secret and (for temporary credentials) the session token. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** When temporary credentials stop working (from IMDS); absent for static ones. */
  expiration?: Date;
}

/** What to sign. `headers` must not contain Authorization; Host comes from `url`. */
export interface SignInput {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  credentials: AwsCredentials;
  region: string;
  service: string;
  now: Date;
}

/** The headers to send (including `host`, `x-amz-date`, `authorization`) and the intermediate strings. */
export interface SignedRequest {
  headers: Record<string, string>;
  canonicalRequest: string;
  stringToSign: string;
  signature: string;
}

const enc = new TextEncoder();

/** Lower-case hex of bytes. */
export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** Hex SHA-256 of a UTF-8 string or bytes. */
export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  return toHex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

async function hmac(key: Uint8Array, data: string): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(data)));
}

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
export async function signingKey(
  secretAccessKey: string,
  date: string,
  region: string,
  service: string,
): Promise<Uint8Array> {
  const kDate = await hmac(enc.encode(`AWS4${secretAccessKey}`), date);
  const kRegion = await hmac(kDate, region);
  const kService = await hmac(kRegion, service);
  return await hmac(kService, "aws4_request");
}

/** `20150830T123600Z` (ISO 8601 basic, UTC, no fraction). */
export function amzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/**
 * RFC 3986 percent-encoding as SigV4 wants it: everything but `A-Z a-z 0-9 - _ . ~` becomes
 * `%XX` with upper-case hex, over the UTF-8 bytes; `/` is kept when `keepSlash`.
 */
export function uriEncode(s: string, keepSlash = false): string {
  let out = "";
  for (const byte of enc.encode(s)) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === "/")) out += c;
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/**
 * Canonical URI for every service but S3: the (already percent-encoded) path of the URL, each
 * segment encoded once more, which is AWS's "encode twice" rule; "/" when empty.
 */
export function canonicalUri(url: URL): string {
  const p = url.pathname || "/";
  return p.split("/").map((seg) => uriEncode(seg)).join("/") || "/";
}

function decodeComponent(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // a stray "%" is taken literally (and encoded as %25 below)
  }
}

/** Query parameters decoded (a `+` stays a `+`), encoded per SigV4, sorted by name then value. */
export function canonicalQuery(search: string): string {
  const q = search.startsWith("?") ? search.slice(1) : search;
  if (q === "") return "";
  const pairs = q.split("&").filter((p) => p !== "").map((p) => {
    const i = p.indexOf("=");
    const k = i < 0 ? p : p.slice(0, i);
    const v = i < 0 ? "" : p.slice(i + 1);
    return [uriEncode(decodeComponent(k)), uriEncode(decodeComponent(v))] as const;
  });
  pairs.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

/** Lower-cased names, values trimmed with inner runs of spaces collapsed, sorted by name. */
export function canonicalHeaders(headers: Record<string, string>): { text: string; signed: string } {
  const m = new Map<string, string[]>();
  for (const [k, v] of Object.entries(headers)) {
    const name = k.toLowerCase().trim();
    const list = m.get(name) ?? [];
    list.push(v.trim().replace(/\s+/g, " "));
    m.set(name, list);
  }
  const names = [...m.keys()].sort();
  return {
    text: names.map((n) => `${n}:${m.get(n)!.join(",")}\n`).join(""),
    signed: names.join(";"),
  };
}

/**
 * Signs a request: adds `host`, `x-amz-date` and (with a session token) `x-amz-security-token`
 * to the signed headers and returns them with `authorization`. `content-length` is not signed
 * (fetch sets it; the test-suite vectors do not sign it either).
 */
export async function signRequest(i: SignInput): Promise<SignedRequest> {
  const stamp = amzDate(i.now);
  const date = stamp.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(i.headers ?? {})) headers[k.toLowerCase()] = v;
  headers["host"] = i.url.host;
  headers["x-amz-date"] = stamp;
  if (i.credentials.sessionToken) headers["x-amz-security-token"] = i.credentials.sessionToken;
  const ch = canonicalHeaders(headers);
  const payloadHash = await sha256Hex(i.body ?? "");
  const canonicalRequest = [
    i.method.toUpperCase(),
    canonicalUri(i.url),
    canonicalQuery(i.url.search),
    ch.text,
    ch.signed,
    payloadHash,
  ].join("\n");
  const scope = `${date}/${i.region}/${i.service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", stamp, scope, await sha256Hex(canonicalRequest)].join("\n");
  const key = await signingKey(i.credentials.secretAccessKey, date, i.region, i.service);
  const k = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const signature = toHex(await crypto.subtle.sign("HMAC", k, enc.encode(stringToSign)));
  headers["authorization"] =
    `AWS4-HMAC-SHA256 Credential=${i.credentials.accessKeyId}/${scope}, SignedHeaders=${ch.signed}, Signature=${signature}`;
  return { headers, canonicalRequest, stringToSign, signature };
}

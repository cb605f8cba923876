/**
 * IMDSv2 credentials/region and endpoint selection, against an in-process stand-in of IMDS
 * (a `fetch` handed a handler). Role name, keys and tokens are fake.
 */
import assert from "node:assert/strict";
import { ec2Endpoint, imdsEndpoint } from "./env.ts";
import { CredentialSource, ImdsError } from "./imds.ts";

function imds(opts: { expiresInMs: number; now: () => number }) {
  let token = "t1";
  const log: string[] = [];
  let issued = 0;
  const fetch = (input: string | URL, init?: RequestInit) => {
    const url = new URL(input);
    const h = new Headers(init?.headers);
    log.push(`${init?.method ?? "GET"} ${url.pathname}`);
    if (url.pathname === "/latest/api/token") {
      assert.equal(init?.method, "PUT");
      assert.equal(h.get("x-aws-ec2-metadata-token-ttl-seconds"), "21600");
      return Promise.resolve(new Response(token));
    }
    if (h.get("x-aws-ec2-metadata-token") !== token) {
      return Promise.resolve(new Response("", { status: 401 }));
    }
    if (url.pathname === "/latest/meta-data/iam/security-credentials/") {
      return Promise.resolve(new Response("role-a\n"));
    }
    if (url.pathname === "/latest/meta-data/iam/security-credentials/role-a") {
      issued++;
      return Promise.resolve(Response.json({
        Code: "Success",
        AccessKeyId: `ASIA${issued}`,
        SecretAccessKey: "s",
        Token: `session-${issued}`,
        Expiration: new Date(opts.now() + opts.expiresInMs).toISOString(),
      }));
    }
    if (url.pathname === "/latest/meta-data/placement/region") {
      return Promise.resolve(new Response("eu-central-1"));
    }
    return Promise.resolve(new Response("", { status: 404 }));
  };
  return { fetch, log, rotate: () => (token = "t2") };
}

Deno.test("imds: v2 token, role credentials cached until 5 min before expiry, token renewed after 401", async () => {
  let now = Date.parse("2026-01-01T00:00:00Z");
  const s = imds({ expiresInMs: 3600_000, now: () => now });
  const src = new CredentialSource({ env: () => undefined, fetch: s.fetch, now: () => now });
  const c1 = await src.credentials();
  assert.deepEqual({ id: c1.accessKeyId, token: c1.sessionToken }, { id: "ASIA1", token: "session-1" });
  assert.deepEqual(s.log, [
    "PUT /latest/api/token",
    "GET /latest/meta-data/iam/security-credentials/",
    "GET /latest/meta-data/iam/security-credentials/role-a",
  ]);
  now += 30 * 60_000;
  assert.equal((await src.credentials()).accessKeyId, "ASIA1", "cached");
  assert.equal(s.log.length, 3);
  now += 26 * 60_000; // 4 min before expiry: refreshed
  assert.equal((await src.credentials()).accessKeyId, "ASIA2");
  assert.equal(await src.region(), "eu-central-1");
  // IMDS forgot our token: one 401, then a new token on the next call.
  s.rotate();
  src.invalidate();
  await assert.rejects(src.credentials(), /HTTP 401/);
  assert.equal((await src.credentials()).accessKeyId, "ASIA3", "a new token after the 401");
});

Deno.test("imds: environment wins (keys, region); disabled IMDS and bad answers are ImdsErrors", async () => {
  const never = () => Promise.reject(new Error("IMDS must not be asked"));
  const vars: Record<string, string> = {
    AWS_ACCESS_KEY_ID: "AKID",
    AWS_SECRET_ACCESS_KEY: "SECRET",
    AWS_SESSION_TOKEN: "TOK",
    AWS_DEFAULT_REGION: "sa-east-1",
  };
  const src = new CredentialSource({ env: (k) => vars[k], fetch: never });
  assert.deepEqual(await src.credentials(), {
    accessKeyId: "AKID",
    secretAccessKey: "SECRET",
    sessionToken: "TOK",
  });
  assert.equal(await src.region(), "sa-east-1");

  const off = new CredentialSource({
    env: (k) => ({ AWS_EC2_METADATA_DISABLED: "true" } as Record<string, string>)[k],
    fetch: never,
  });
  await assert.rejects(
    off.credentials(),
    (e: Error) => e instanceof ImdsError && /AWS_EC2_METADATA_DISABLED/.test(e.message),
  );

  const noRole = new CredentialSource({
    env: () => undefined,
    fetch: (u) => Promise.resolve(new Response(new URL(u).pathname === "/latest/api/token" ? "t" : "")),
  });
  await assert.rejects(noRole.credentials(), /has no IAM role/);
  await assert.rejects(noRole.region(), /"" is not a region name/);
});

Deno.test("endpoints: env overrides, regional default, China partition", () => {
  const e = (vars: Record<string, string>) => (k: string) => vars[k];
  assert.equal(imdsEndpoint(e({})), "http://169.254.169.254");
  assert.equal(
    imdsEndpoint(e({ AWS_EC2_METADATA_SERVICE_ENDPOINT: "http://[fd00:ec2::254]/" })),
    "http://[fd00:ec2::254]",
  );
  assert.equal(ec2Endpoint(e({}), "us-east-1"), "https://ec2.us-east-1.amazonaws.com");
  assert.equal(ec2Endpoint(e({}), "cn-north-1"), "https://ec2.cn-north-1.amazonaws.com.cn");
  assert.equal(ec2Endpoint(e({ AWS_ENDPOINT_URL: "http://a" }), "us-east-1"), "http://a");
  assert.equal(
    ec2Endpoint(e({ AWS_ENDPOINT_URL: "http://a", AWS_ENDPOINT_URL_EC2: "http://b/" }), "us-east-1"),
    "http://b",
  );
});

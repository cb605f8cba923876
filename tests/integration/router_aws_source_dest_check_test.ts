/**
 * `--disable-source-dest-check` through the routing controller.
 *
 * STAND-IN: EC2 and the instance metadata service cannot run here, so one HTTP server on
 * 127.0.0.1 (random port) plays both: IMDSv2 (`PUT /latest/api/token`, token-checked GETs of
 * the role's credentials and `placement/region`) and the EC2 Query endpoint (`POST /`). It
 * VERIFIES every EC2 request's SigV4 signature itself, recomputed from the request it received
 * with `node:crypto` (not with the code under test), and answers `SignatureDoesNotMatch` (403)
 * when it differs, as EC2 does. The controller reaches it through the env overrides
 * `AWS_EC2_METADATA_SERVICE_ENDPOINT` and `AWS_ENDPOINT_URL_EC2`.
 *
 * The routing controller runs for real in a throwaway namespace `rt-aws-<random>` (host state:
 * kube-bridge, sysctls, ipsets, chains), with the BGP speaker not listening.
 *
 * Addresses: node network 10.213.0.0/24 on the namespace's bridge `rta0` (node-1 .1), pod CIDRs
 * 10.213.<n>.0/24. Instance ids are fake (i-0aaa…, i-0bbb…).
 */
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { BgpSpeaker } from "../../bgp/mod.ts";
import { defaultOptions } from "../../options/mod.ts";
import type { ControllerContext } from "../../controllers/controller.ts";
import { RouterController } from "../../controllers/router/mod.ts";
import { CommandRunner } from "../../kernel/exec.ts";
import { logger } from "../../observe/log.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { emptySnapshot, type NodeInfo } from "../../watch/types.ts";

const ROLE = "kube-router-node-role";
const ISSUED = {
  AccessKeyId: "ASIASTANDINEXAMPLE01",
  SecretAccessKey: "stand-in/secret+key/EXAMPLEKEY0000000000",
  Token: "stand-in-session-token//+==",
};
/** Static credentials handed over in the environment (AWS_ACCESS_KEY_ID, ...). */
const STATIC = {
  AccessKeyId: "AKIDSTANDINSTATIC001",
  SecretAccessKey: "static/stand-in+secret",
  Token: "static-token",
};
const KEYS = new Map([[ISSUED.AccessKeyId, ISSUED], [STATIC.AccessKeyId, STATIC]]);
const UNKNOWN_INSTANCE = "i-0eeeeeeeeeeeeeee1";

interface Ec2Call {
  accessKeyId: string;
  instanceId: string;
  region: string;
  verified: boolean;
}

/** The stand-in: IMDSv2 + EC2, signature-verifying. */
function standIn() {
  const token = `stand-in-token-${crypto.randomUUID()}`;
  const ec2: Ec2Call[] = [];
  const rejected: string[] = [];
  /** Instances EC2 says do not exist (the test removes one to let a retry succeed). */
  const notFound = new Set([UNKNOWN_INSTANCE]);
  let imdsRequests = 0;
  const sha = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");
  const hmac = (k: string | Buffer, s: string) => createHmac("sha256", k).update(s, "utf8").digest();

  /** SigV4 recomputed from the received request, independently of controllers/router/aws. */
  function verify(
    req: Request,
    body: string,
  ): { ok: true; region: string; accessKeyId: string } | { ok: false; why: string } {
    const auth = req.headers.get("authorization") ?? "";
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/
        .exec(auth);
    if (!m) return { ok: false, why: `malformed Authorization ${JSON.stringify(auth)}` };
    const [, akid, date, region, service, signedHeaders, signature] = m;
    const keys = KEYS.get(akid);
    if (!keys) return { ok: false, why: `unknown access key ${akid}` };
    if (service !== "ec2") return { ok: false, why: `service ${service}` };
    const stamp = req.headers.get("x-amz-date") ?? "";
    if (!stamp.startsWith(date)) return { ok: false, why: `x-amz-date ${stamp} vs scope ${date}` };
    if (
      Math.abs(
        Date.parse(stamp.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, "$1-$2-$3T$4:$5:$6Z")) -
          Date.now(),
      ) > 300_000
    ) {
      return { ok: false, why: `x-amz-date ${stamp} more than 5 minutes off` };
    }
    if (req.headers.get("x-amz-security-token") !== keys.Token) return { ok: false, why: "session token" };
    const names = signedHeaders.split(";");
    for (const required of ["host", "x-amz-date", "x-amz-security-token"]) {
      if (!names.includes(required)) return { ok: false, why: `${required} not signed` };
    }
    const url = new URL(req.url);
    const canonical = [
      req.method,
      url.pathname,
      url.search.slice(1),
      names.map((n) => `${n}:${(req.headers.get(n) ?? "").trim().replace(/\s+/g, " ")}\n`).join(""),
      signedHeaders,
      sha(body),
    ].join("\n");
    const sts = ["AWS4-HMAC-SHA256", stamp, `${date}/${region}/${service}/aws4_request`, sha(canonical)].join(
      "\n",
    );
    const key = hmac(
      hmac(hmac(hmac(`AWS4${keys.SecretAccessKey}`, date), region), service),
      "aws4_request",
    );
    const want = createHmac("sha256", key).update(sts, "utf8").digest("hex");
    return want === signature
      ? { ok: true, region, accessKeyId: akid }
      : { ok: false, why: `signature ${signature} != ${want}` };
  }

  const xmlError = (status: number, code: string, message: string) =>
    new Response(
      `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>stand-in-${crypto.randomUUID()}</RequestID></Response>`,
      { status, headers: { "content-type": "text/xml" } },
    );

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname.startsWith("/latest/")) {
      imdsRequests++;
      if (req.method === "PUT" && url.pathname === "/latest/api/token") {
        if (!req.headers.get("x-aws-ec2-metadata-token-ttl-seconds")) {
          return new Response("", { status: 400 });
        }
        return new Response(token);
      }
      if (req.method !== "GET") return new Response("", { status: 405 });
      if (req.headers.get("x-aws-ec2-metadata-token") !== token) return new Response("", { status: 401 });
      if (url.pathname === "/latest/meta-data/iam/security-credentials/") return new Response(ROLE);
      if (url.pathname === `/latest/meta-data/iam/security-credentials/${ROLE}`) {
        return Response.json({
          Code: "Success",
          LastUpdated: new Date().toISOString(),
          Type: "AWS-HMAC",
          ...ISSUED,
          Expiration: new Date(Date.now() + 6 * 3600_000).toISOString(),
        });
      }
      if (url.pathname === "/latest/meta-data/placement/region") return new Response("eu-west-1");
      return new Response("", { status: 404 });
    }
    // EC2 Query API.
    const body = await req.text();
    const v = verify(req, body);
    if (!v.ok) {
      rejected.push(v.why);
      return xmlError(403, "SignatureDoesNotMatch", v.why);
    }
    const form = new URLSearchParams(body);
    if (
      req.method !== "POST" || url.pathname !== "/" ||
      !(req.headers.get("content-type") ?? "").startsWith("application/x-www-form-urlencoded") ||
      form.get("Action") !== "ModifyInstanceAttribute" || form.get("Version") !== "2016-11-15" ||
      form.get("SourceDestCheck.Value") !== "false"
    ) {
      rejected.push(`bad request ${req.method} ${url.pathname} ${body}`);
      return xmlError(400, "InvalidParameterCombination", "stand-in: unexpected request");
    }
    const instanceId = form.get("InstanceId") ?? "";
    ec2.push({ accessKeyId: v.accessKeyId, instanceId, region: v.region, verified: true });
    if (notFound.has(instanceId)) {
      return xmlError(400, "InvalidInstanceID.NotFound", `The instance ID '${instanceId}' does not exist`);
    }
    return new Response(
      `<?xml version="1.0" encoding="UTF-8"?>\n<ModifyInstanceAttributeResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>${crypto.randomUUID()}</requestId><return>true</return></ModifyInstanceAttributeResponse>`,
      { headers: { "content-type": "text/xml" } },
    );
  });
  const endpoint = `http://127.0.0.1:${server.addr.port}`;
  return {
    ec2,
    rejected,
    notFound,
    get imdsRequests() {
      return imdsRequests;
    },
    env: {
      AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoint,
      AWS_ENDPOINT_URL_EC2: endpoint,
    } as Record<string, string>,
    close: () => server.shutdown(),
  };
}

function node(n: number, providerID: string): NodeInfo {
  return {
    name: `node-${n}`,
    labels: {},
    annotations: {},
    podCIDRs: [`10.213.${n}.0/24`],
    internalIPs: [`10.213.0.${n}`],
    externalIPs: [],
    providerID,
  };
}

const snapshotOf = (nodes: NodeInfo[]) => ({
  ...emptySnapshot(),
  nodes: new Map(nodes.map((n) => [n.name, n])),
});

Deno.test({
  name:
    "router aws: ModifyInstanceAttribute once per AWS node (start, added later), signed; none for others or with the flag off",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const ns = `rt-aws-${crypto.randomUUID().slice(0, 8)}`;
    const root = new CommandRunner();
    const aws = standIn();
    await root.run(["ip", "netns", "add", ns]);
    const run = new CommandRunner(ns);
    try {
      await run.run(["ip", "-batch", "-"], {
        stdin: [
          "link set lo up",
          "link add name rta0 type bridge",
          "link set rta0 up",
          "addr add 10.213.0.1/24 dev rta0",
        ]
          .join("\n") + "\n",
      });
      const ctxOf = (disableSourceDestCheck: boolean): ControllerContext => ({
        options: {
          ...defaultOptions(),
          enableIbgp: false,
          enableOverlay: false,
          enableCni: false,
          gobgpAdminPort: 0,
          injectedRoutesSyncPeriod: 0,
          disableSourceDestCheck,
        },
        runner: run,
        nodeName: "node-1",
        log: logger("router-aws-test"),
        metrics: new MetricsRegistry(),
        dryRun: false,
      });
      const deps = {
        speakerFactory: (cfg: ConstructorParameters<typeof BgpSpeaker>[0]) =>
          new BgpSpeaker({ ...cfg, listen: false }),
        // Long enough that the failed call is not retried before the test has counted it, even on a
        // loaded machine; short enough for the retry step below (5 s deadline).
        aws: { env: (k: string) => aws.env[k], initialBackoffMs: 1000 },
      };
      const start = [
        node(1, "aws:///eu-west-1a/i-0aaaaaaaaaaaaaaa1"),
        node(2, "aws:///us-east-2b/i-0bbbbbbbbbbbbbbb2"),
        node(3, "gce://project/europe-west1-b/node-3"),
        node(4, ""),
      ];

      // 1. The flag on (upstream's default).
      const c = new RouterController(ctxOf(true), deps);
      const abort = new AbortController();
      await c.start(abort.signal);
      try {
        await c.sync(snapshotOf(start), abort.signal);
        await c.sourceDestCheck!.idle();
        assert.deepEqual(aws.rejected, [], "every request carried a valid signature");
        assert.deepEqual(
          aws.ec2.map((x) => `${x.instanceId} ${x.region}`).sort(),
          ["i-0aaaaaaaaaaaaaaa1 eu-west-1", "i-0bbbbbbbbbbbbbbb2 us-east-2"],
          "one call per AWS node, signed for the region of its zone",
        );
        assert.ok(aws.imdsRequests >= 3, "credentials came from IMDSv2 (token, role, credentials)");
        // kube-bridge exists: routing went on regardless.
        assert.match((await run.run(["ip", "-o", "link", "show", "kube-bridge"])).stdout, /kube-bridge/);

        // The same nodes again: no call.
        await c.sync(snapshotOf(start), abort.signal);
        await c.sourceDestCheck!.idle();
        assert.equal(aws.ec2.length, 2);

        // A node added later (no zone in its providerID: region from IMDS placement/region),
        // and a non-AWS one: exactly one more call.
        const more = [...start, node(5, "aws:///i-0ccccccccccccccc3"), node(6, "kind://docker/kind/node-6")];
        await c.sync(snapshotOf(more), abort.signal);
        await c.sourceDestCheck!.idle();
        assert.deepEqual(aws.ec2.slice(2).map((x) => `${x.instanceId} ${x.region}`), [
          "i-0ccccccccccccccc3 eu-west-1",
        ]);

        // EC2 refuses one node: the routing sync still succeeds; the failure is counted, the
        // others are not called again.
        const withUnknown = [...more, node(7, `aws:///eu-west-1c/${UNKNOWN_INSTANCE}`)];
        await c.sync(snapshotOf(withUnknown), abort.signal);
        await c.sourceDestCheck!.idle();
        assert.deepEqual(aws.ec2.slice(3).map((x) => x.instanceId), [UNKNOWN_INSTANCE]);
        assert.equal(c.sourceDestCheck!.stats.failures, 1);
        assert.deepEqual(aws.rejected, []);

        // Once EC2 knows the instance, the back-off timer retries it without any new sync.
        aws.notFound.delete(UNKNOWN_INSTANCE);
        const deadline = Date.now() + 5000;
        while (aws.ec2.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        await c.sourceDestCheck!.idle();
        assert.deepEqual(aws.ec2.slice(4).map((x) => x.instanceId), [UNKNOWN_INSTANCE], "retried once");
        await c.sync(snapshotOf(withUnknown), abort.signal);
        await c.sourceDestCheck!.idle();
        assert.equal(aws.ec2.length, 5, "and then left alone");
        assert.ok(aws.ec2.every((x) => x.accessKeyId === ISSUED.AccessKeyId));
      } finally {
        abort.abort();
        await c.stop();
        await c.sourceDestCheck!.idle();
      }

      // 2. --disable-source-dest-check=false: nothing is asked of IMDS or EC2.
      const before = { ec2: aws.ec2.length, imds: aws.imdsRequests };
      const off = new RouterController(ctxOf(false), deps);
      const abort2 = new AbortController();
      await off.start(abort2.signal);
      try {
        assert.equal(off.sourceDestCheck, null);
        await off.sync(snapshotOf([...start, node(5, "aws:///i-0ccccccccccccccc3")]), abort2.signal);
        await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual({ ec2: aws.ec2.length, imds: aws.imdsRequests }, before);
      } finally {
        abort2.abort();
        await off.stop();
      }

      // 3. Static credentials from the environment: IMDS is not asked, EC2 sees that key.
      const imdsBefore = aws.imdsRequests;
      const envCreds: Record<string, string> = {
        ...aws.env,
        AWS_ACCESS_KEY_ID: STATIC.AccessKeyId,
        AWS_SECRET_ACCESS_KEY: STATIC.SecretAccessKey,
        AWS_SESSION_TOKEN: STATIC.Token,
        AWS_REGION: "ap-south-1",
      };
      const st = new RouterController(ctxOf(true), { ...deps, aws: { env: (k: string) => envCreds[k] } });
      const abort3 = new AbortController();
      await st.start(abort3.signal);
      try {
        await st.sync(
          snapshotOf([node(1, "aws:///i-0ddddddddddddddd4"), node(3, "gce://p/z/n")]),
          abort3.signal,
        );
        await st.sourceDestCheck!.idle();
        assert.deepEqual(aws.rejected, []);
        assert.deepEqual(aws.ec2.slice(5).map((x) => `${x.accessKeyId} ${x.instanceId} ${x.region}`), [
          `${STATIC.AccessKeyId} i-0ddddddddddddddd4 ap-south-1`,
        ]);
        assert.equal(aws.imdsRequests, imdsBefore);
      } finally {
        abort3.abort();
        await st.stop();
      }
    } finally {
      await aws.close();
      await root.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
    }
  },
});

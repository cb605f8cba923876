/**
 * Error handling of the source/dest check without the network: EC2 and IMDS are played by an
 * in-process stand-in (`fetch` handed a handler; the real HTTP path is in
 * tests/integration/router_aws_source_dest_check_test.ts). Instance ids are fake (i-0…).
 */
import assert from "node:assert/strict";
import { logger } from "../../../observe/log.ts";
import type { NodeInfo } from "../../../watch/types.ts";
import { disableSourceDestCheck, Ec2Error, modifySourceDestCheckBody, parseEc2Error } from "./ec2.ts";
import type { Fetch } from "./imds.ts";
import { SourceDestCheck } from "./source_dest_check.ts";

const NOT_FOUND = `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-0aaaaaaaaaaaaaaa1' does not exist</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>`;
const OK = `<ModifyInstanceAttributeResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
<requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId><return>true</return></ModifyInstanceAttributeResponse>`;

function standIn(handler: (req: Request) => Response | Promise<Response>): Fetch & { calls: Request[] } {
  const calls: Request[] = [];
  const f = (input: string | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    calls.push(req.clone());
    return Promise.resolve(handler(req));
  };
  return Object.assign(f, { calls });
}

const node = (name: string, providerID: string): NodeInfo => ({
  name,
  labels: {},
  annotations: {},
  podCIDRs: [],
  internalIPs: [],
  externalIPs: [],
  providerID,
});

const env = (vars: Record<string, string>) => (n: string) => vars[n];
const staticEnv = env({
  AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
  AWS_SECRET_ACCESS_KEY: "secret",
  AWS_ENDPOINT_URL_EC2: "http://ec2.stand-in.invalid",
});

Deno.test("ec2: error XML gives code, message, request id; the call reports them", async () => {
  assert.deepEqual(parseEc2Error(NOT_FOUND), {
    code: "InvalidInstanceID.NotFound",
    message: "The instance ID 'i-0aaaaaaaaaaaaaaa1' does not exist",
    requestId: "ea966190-f9aa-478e-9ede-example",
  });
  assert.equal(
    modifySourceDestCheckBody("i-0aaaaaaaaaaaaaaa1"),
    "Action=ModifyInstanceAttribute&InstanceId=i-0aaaaaaaaaaaaaaa1&SourceDestCheck.Value=false&Version=2016-11-15",
  );
  const base = {
    endpoint: "https://ec2.us-east-1.amazonaws.com",
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
    instanceId: "i-0aaaaaaaaaaaaaaa1",
  };
  await assert.rejects(
    disableSourceDestCheck({ ...base, fetch: standIn(() => new Response(NOT_FOUND, { status: 400 })) }),
    (e: Error) => {
      assert.ok(e instanceof Ec2Error);
      assert.equal(e.status, 400);
      assert.equal(e.code, "InvalidInstanceID.NotFound");
      assert.match(e.message, /i-0aaaaaaaaaaaaaaa1.*HTTP 400 InvalidInstanceID\.NotFound.*request ea966190/);
      return true;
    },
  );
  await assert.rejects(
    disableSourceDestCheck({ ...base, fetch: () => Promise.reject(new TypeError("connection refused")) }),
    (e: Error) => e instanceof Ec2Error && e.status === null && /connection refused/.test(e.message),
  );
  await assert.rejects(
    disableSourceDestCheck({ ...base, fetch: standIn(() => new Response("<x/>", { status: 200 })) }),
    /without <return>true<\/return>/,
  );
  const ok = standIn(() => new Response(OK));
  await disableSourceDestCheck({ ...base, fetch: ok });
  assert.equal(ok.calls.length, 1);
  assert.equal(ok.calls[0].method, "POST");
  assert.equal(ok.calls[0].url, "https://ec2.us-east-1.amazonaws.com/");
  assert.equal(await ok.calls[0].text(), modifySourceDestCheckBody("i-0aaaaaaaaaaaaaaa1"));
  assert.match(
    ok.calls[0].headers.get("authorization")!,
    /\/us-east-1\/ec2\/aws4_request, SignedHeaders=content-type;host;x-amz-date,/,
  );
});

Deno.test("source/dest check: non-AWS skipped, malformed skipped, EC2 error retried with back-off, never thrown", async () => {
  let now = 1_000_000;
  let fail = true;
  const ec2 = standIn(() =>
    fail
      ? new Response(
        "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors></Response>",
        { status: 503 },
      )
      : new Response(OK)
  );
  const sdc = new SourceDestCheck({
    log: logger("test"),
    env: staticEnv,
    fetch: ec2,
    now: () => now,
    initialBackoffMs: 1000,
  });
  try {
    const nodes = [
      node("a", "aws:///us-east-1a/i-0aaaaaaaaaaaaaaa1"),
      node("b", "gce://proj/europe-west1-b/vm-b"),
      node("c", "aws:///us-east-1a/not-an-instance"),
      node("d", ""),
    ];
    let out = await sdc.reconcile(nodes);
    assert.equal(out.length, 1);
    assert.equal(out[0].node, "a");
    assert.equal(out[0].result, "failed");
    if (out[0].result === "failed") {
      assert.ok(out[0].error instanceof Ec2Error);
      assert.equal((out[0].error as Ec2Error).code, "RequestLimitExceeded");
      assert.equal(out[0].retryInMs, 1000);
    }
    // Before the back-off has passed: no call.
    now += 500;
    out = await sdc.reconcile(nodes);
    assert.deepEqual(out.map((o) => o.result), ["waiting"]);
    assert.equal(ec2.calls.length, 1);
    // Second failure doubles the back-off.
    now += 600;
    out = await sdc.reconcile(nodes);
    assert.equal(out[0].result === "failed" && out[0].retryInMs, 2000);
    // Then it works, once.
    fail = false;
    now += 2000;
    out = await sdc.reconcile(nodes);
    assert.deepEqual(out, [{ node: "a", result: "disabled", instanceId: "i-0aaaaaaaaaaaaaaa1" }]);
    assert.deepEqual(await sdc.reconcile(nodes), []);
    assert.equal(ec2.calls.length, 3, "non-AWS and malformed nodes never caused a call");
    // The node leaves and comes back: done again.
    await sdc.reconcile(nodes.slice(1));
    out = await sdc.reconcile(nodes);
    assert.equal(out[0].result, "disabled");
    assert.equal(ec2.calls.length, 4);
    assert.equal(sdc.stats.failures, 2);
  } finally {
    sdc.close();
  }
});

Deno.test("source/dest check: IMDS unreachable is a failure of that node, not a crash; dry run calls nothing", async () => {
  const imds = standIn(() => new Response("", { status: 500 }));
  const sdc = new SourceDestCheck({
    log: logger("test"),
    env: env({ AWS_EC2_METADATA_SERVICE_ENDPOINT: "http://imds.stand-in.invalid" }),
    fetch: imds,
  });
  try {
    const out = await sdc.reconcile([node("a", "aws:///eu-west-1b/i-0aaaaaaaaaaaaaaa1")]);
    assert.equal(out[0].result, "failed");
    assert.match(
      out[0].result === "failed" ? out[0].error.message : "",
      /IMDS PUT .*\/latest\/api\/token: HTTP 500/,
    );
  } finally {
    sdc.close();
  }
  const reports: string[] = [];
  const dry = new SourceDestCheck({
    log: logger("test"),
    env: staticEnv,
    fetch: () => Promise.reject(new Error("dry run must not call")),
    dryRun: true,
    report: (t) => reports.push(t),
  });
  const out = await dry.reconcile([node("a", "aws:///eu-west-1b/i-0aaaaaaaaaaaaaaa1")]);
  assert.equal(out[0].result, "would-disable");
  assert.match(
    reports.join(""),
    /would disable the EC2 source\/dest check of i-0aaaaaaaaaaaaaaa1 \(node a\)/,
  );
  dry.close();
});

Deno.test("source/dest check: update() returns at once and a failing pass retries on its own timer", async () => {
  let n = 0;
  const ec2 = standIn(() => ++n === 1 ? new Response(NOT_FOUND, { status: 400 }) : new Response(OK));
  const sdc = new SourceDestCheck({ log: logger("test"), env: staticEnv, fetch: ec2, initialBackoffMs: 20 });
  try {
    sdc.update([node("a", "aws:///us-east-1a/i-0aaaaaaaaaaaaaaa1")]);
    assert.equal(ec2.calls.length, 0, "nothing awaited in update()");
    await sdc.idle();
    assert.equal(ec2.calls.length, 1);
    const deadline = Date.now() + 2000;
    while (ec2.calls.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await sdc.idle();
    assert.equal(ec2.calls.length, 2, "retried by the back-off timer");
    assert.equal(sdc.stats.failures, 1);
  } finally {
    sdc.close();
  }
});

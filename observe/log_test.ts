import assert from "node:assert/strict";
import { logger, redact, setupLogging } from "./log.ts";

Deno.test("log: klog-like lines by default, secrets redacted", async () => {
  const lines: string[] = [];
  await setupLogging({ verbosity: 0, format: "text", write: (l) => lines.push(l) });
  logger("router").info("peer {peer} configured", { peer: "192.0.2.1", password: "s3cret", asn: 65001 });
  logger("router").debug("not shown at -v 0");
  assert.equal(lines.length, 1);
  assert.match(
    lines[0],
    /^I\d{4} \d{2}:\d{2}:\d{2}\.\d{6} \d+ log_test\.ts:\d+\] router: peer 192\.0\.2\.1 configured/,
  );
  assert.match(lines[0], /password=<redacted>/);
  assert.doesNotMatch(lines[0], /s3cret/);
  assert.match(lines[0], /asn=65001/);
});

Deno.test("log: JSON with --log-format=json, -v raises verbosity, nested secrets redacted", async () => {
  const lines: string[] = [];
  await setupLogging({ verbosity: 2, format: "json", write: (l) => lines.push(l) });
  logger("agent").warn("using {cfg}", {
    cfg: { kubeconfig: "/k", token: "abc", peers: [{ ip: "a", password: "p" }] },
  });
  logger("agent").debug("shown at -v 2");
  assert.equal(lines.length, 2);
  const rec = JSON.parse(lines[0]);
  assert.equal(rec.level, "warning");
  assert.equal(rec.logger, "kube-router.agent");
  assert.equal(rec.cfg.token, "<redacted>");
  assert.equal(rec.cfg.peers[0].password, "<redacted>");
  assert.doesNotMatch(lines.join(""), /"abc"|"p"/);
});

Deno.test("log: redact keeps non-secret fields", () => {
  assert.deepEqual(redact({ passwords: ["a"], peerRouterPasswords: ["b"], name: "x", tokenFile: "/t" }), {
    passwords: "<redacted>",
    peerRouterPasswords: "<redacted>",
    name: "x",
    tokenFile: "<redacted>",
  });
});

Deno.test("log: file:line is the caller's, and the microseconds are real", async () => {
  const lines: string[] = [];
  await setupLogging({ verbosity: 0, format: "text", write: (l) => lines.push(l) });
  const expectedLine = Number(new Error().stack!.split("\n")[1].match(/:(\d+):\d+\)?$/)![1]) + 2;
  for (let i = 0; i < 50; i++) {
    logger("proxy").info("tick {i}", { i });
  }
  assert.match(lines[0], new RegExp(` log_test\\.ts:${expectedLine}\\] proxy: tick 0$`, "m"));
  // Fifty lines cannot all fall on whole milliseconds (the old formatter always printed ...000).
  const micros = lines.map((l) => l.match(/^I\d{4} [\d:]+\.(\d{6}) /)![1]);
  assert.ok(micros.some((m) => !m.endsWith("000")), micros.join(" "));
  const json: string[] = [];
  await setupLogging({ verbosity: 0, format: "json", write: (l) => json.push(l) });
  logger("agent").info("x");
  assert.match(JSON.parse(json[0]).caller, /^log_test\.ts:\d+$/);
});

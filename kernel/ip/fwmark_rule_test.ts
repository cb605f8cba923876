// Golden tests for the DSR policy-routing batch and the parsers, on `ip -j` output captured from
// this kernel (iproute2 6.x in a scratch namespace). Marks are arbitrary.
import assert from "node:assert/strict";
import { parseDsrLocalRoute, parseDsrRules, renderDsrRouting } from "./fwmark_rule.ts";

Deno.test("parseDsrRules: only fwmark rules to table 78 at priority 32764", () => {
  const json = JSON.stringify([
    { priority: 0, src: "all", table: "local" },
    { priority: 32764, src: "all", fwmark: "0x1a", table: "78" },
    { priority: 32764, src: "all", fwmark: "0x1b", table: "kube-router-dsr" },
    { priority: 32764, src: "all", fwmark: "0x1c", table: "79" },
    { priority: 100, src: "all", fwmark: "0x1d", table: "78" },
    { priority: 32766, src: "all", table: "main" },
  ]);
  assert.deepEqual(parseDsrRules(json), [0x1a, 0x1b]);
  assert.deepEqual(parseDsrRules(""), []);
});

Deno.test("parseDsrLocalRoute", () => {
  assert.equal(
    parseDsrLocalRoute('[{"type":"local","dst":"default","dev":"lo","scope":"host","flags":[]}]'),
    true,
  );
  assert.equal(parseDsrLocalRoute('[{"dst":"default","dev":"lo"}]'), false);
  assert.equal(parseDsrLocalRoute(""), false);
});

Deno.test("renderDsrRouting: add missing, delete stale, route with the first/last mark", () => {
  assert.deepEqual(
    renderDsrRouting({ marks: [], localRoute: false }, { marks: [0x10, 0x2f], localRoute: true }),
    [
      "link set lo up",
      "route replace local default dev lo table 78",
      "rule add fwmark 0x10 lookup 78 priority 32764",
      "rule add fwmark 0x2f lookup 78 priority 32764",
    ],
  );
  assert.deepEqual(
    renderDsrRouting({ marks: [0x10, 0x2f], localRoute: true }, { marks: [0x2f], localRoute: true }),
    [
      "rule del fwmark 0x10 lookup 78 priority 32764",
    ],
  );
  assert.deepEqual(renderDsrRouting({ marks: [0x2f], localRoute: true }, { marks: [], localRoute: false }), [
    "rule del fwmark 0x2f lookup 78 priority 32764",
    "route del local default dev lo table 78",
  ]);
  assert.deepEqual(renderDsrRouting({ marks: [1], localRoute: true }, { marks: [1], localRoute: true }), []);
});

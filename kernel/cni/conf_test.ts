import assert from "node:assert/strict";
import { isManagedConf, updateCniConf } from "./conf.ts";

Deno.test("CNI conf: created as a list for .conflist (bridge with hairpin, then portmap), else one plugin", () => {
  const list = JSON.parse(updateCniConf(null, { podCidrs: ["10.1.0.0/24"] }, true));
  assert.deepEqual(list.plugins.map((p: { type: string }) => p.type), ["bridge", "portmap"]);
  assert.equal(list.plugins[0].hairpinMode, true);
  assert.deepEqual(list.plugins[0].ipam.ranges, [[{ subnet: "10.1.0.0/24" }]]);
  const single = JSON.parse(updateCniConf(null, { podCidrs: ["10.1.0.0/24"] }));
  assert.equal(single.type, "bridge");
  assert.equal(single.hairpinMode, true);
  assert.ok(isManagedConf(JSON.stringify(list)) && isManagedConf(JSON.stringify(single)));
});

Deno.test("CNI conf: an operator's single-plugin file under a .conflist name is not rewritten into a list", () => {
  const theirs = JSON.stringify({
    cniVersion: "0.3.1",
    name: "x",
    type: "bridge",
    ipam: { type: "host-local" },
  });
  const out = JSON.parse(updateCniConf(theirs, { podCidrs: ["10.1.0.0/24"] }, true));
  assert.equal(out.plugins, undefined);
  assert.equal(out.type, "bridge");
});

/**
 * The routing controller's IPIP and FoU overlays with real packets, inside a VM running Debian's
 * stock kernel (this machine's kernel has neither): runs tests/vm/router_overlay.ts there against
 * this process's API server and mirrors its steps. Two agent processes start twice under
 * emulation (~7 min on a quiet machine, more when loaded): hence the generous deadline.
 */
import assert from "node:assert/strict";
import { sharedApiServer } from "../fixtures/apiserver.ts";
import { runVmSuite } from "../fixtures/vm_suite.ts";

Deno.test({
  name: "router overlays (IPIP, FoU) with real packets in a VM (Debian kernel)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const api = await sharedApiServer();
    // The agents run from the bundle (`deno task bundle`), built here: the VM cannot build it.
    const dir = await Deno.makeTempDir({ prefix: "kr-ov-bundle-" });
    const bundle = `${dir}/kube-router.js`;
    const b = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform=deno", "-o", bundle, new URL("../../main.ts", import.meta.url).pathname],
      stdout: "null",
      stderr: "inherit",
    }).output();
    assert.equal(b.code, 0, "deno bundle failed");
    const r = await runVmSuite({
      file: "tests/vm/router_overlay.ts",
      api,
      timeoutMs: 20 * 60_000,
      env: { KR_AGENT_BUNDLE: bundle },
    }).finally(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
    await r.mirror(t);
    assert.equal(r.vm.status, 0, `VM suite exited ${r.vm.status}${r.vm.timedOut ? " (timed out)" : ""}`);
  },
});

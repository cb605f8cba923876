/**
 * The routing controller's IPIP and FoU overlays with real packets, inside a VM running Debian's
 * stock kernel (this machine's kernel has neither): runs tests/vm/router_overlay.ts there against
 * this process's API server and mirrors its steps.
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
    const r = await runVmSuite({ file: "tests/vm/router_overlay.ts", api, timeoutMs: 12 * 60_000 });
    await r.mirror(t);
    assert.equal(r.vm.status, 0, `VM suite exited ${r.vm.status}${r.vm.timedOut ? " (timed out)" : ""}`);
  },
});

/**
 * The IPVS-mode service proxy with real packets, inside a VM running Debian's stock kernel (this
 * machine's kernel has no IPVS): boots the VM once (tests/fixtures/vm.ts), runs
 * tests/vm/proxy_ipvs.ts inside against this process's API server, and mirrors each of its steps
 * here. Prints which accelerator ran and the boot and run times.
 */
import assert from "node:assert/strict";
import { sharedApiServer } from "../fixtures/apiserver.ts";
import { runVmSuite } from "../fixtures/vm_suite.ts";

Deno.test({
  name: "IPVS proxy with real packets in a VM (Debian kernel)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const api = await sharedApiServer();
    const r = await runVmSuite({ file: "tests/vm/proxy_ipvs.ts", api, timeoutMs: 20 * 60_000 });
    await r.mirror(t);
    assert.equal(r.vm.status, 0, `VM suite exited ${r.vm.status}${r.vm.timedOut ? " (timed out)" : ""}`);
  },
});

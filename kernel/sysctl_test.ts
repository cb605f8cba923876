import assert from "node:assert/strict";
import { CommandRunner, DryRunRunner } from "./exec.ts";
import { ensureSysctls } from "./sysctl.ts";

// A machine without procps (a fresh minimal Debian): `sysctl` cannot start. The real runner's
// error names the tool; a dry run, whose reads are blank then, shows the write it would make
// instead of calling the parameter missing from the kernel (it did: "kernel has no
// net.ipv4.ip_forward", and `deno task start` failed).
Deno.test("sysctl: without the sysctl tool, the real runner says so and a dry run shows the write", async () => {
  const path = Deno.env.get("PATH");
  Deno.env.set("PATH", "/nonexistent");
  try {
    const wanted = new Map([["net.ipv4.ip_forward", "1"]]);
    await assert.rejects(ensureSysctls(new CommandRunner(), wanted), /cannot start sysctl/);
    const dry = new DryRunRunner(undefined, new CommandRunner());
    assert.deepEqual(await ensureSysctls(dry, wanted), ["net.ipv4.ip_forward"]);
    assert.deepEqual(dry.recorded.map((c) => c.argv), [["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]]);
  } finally {
    if (path === undefined) Deno.env.delete("PATH");
    else Deno.env.set("PATH", path);
  }
});

// With the tool, a key this kernel lacks is still an error outside a dry run.
Deno.test("sysctl: a parameter the kernel lacks is named", async () => {
  await assert.rejects(
    ensureSysctls(new CommandRunner(), new Map([["net.ipv4.no_such_parameter_here", "1"]])),
    /kernel has no "net.ipv4.no_such_parameter_here"/,
  );
});

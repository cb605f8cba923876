import assert from "node:assert/strict";
import { CommandRunner, type ExecOptions, type ExecResult, type Runner } from "../exec.ts";
import { detectIptablesBackend } from "./mod.ts";

/** Answers `iptables -V` with a fixed version line, as each backend's binary prints it. */
function versionRunner(line: string | null): Runner {
  return {
    run(_argv: readonly string[], _o?: ExecOptions): Promise<ExecResult> {
      return line === null
        ? Promise.reject(new Error("iptables: not found"))
        : Promise.resolve({ code: 0, stdout: `${line}\n`, stderr: "" });
    },
  };
}

Deno.test("iptables backend: read from `iptables -V`, nft when it cannot be told", async () => {
  assert.equal(await detectIptablesBackend(versionRunner("iptables v1.8.9 (legacy)")), "legacy");
  assert.equal(await detectIptablesBackend(versionRunner("iptables v1.8.9 (nf_tables)")), "nft");
  assert.equal(await detectIptablesBackend(versionRunner(null)), "nft");
  // This machine's real iptables is the nf_tables one.
  assert.equal(await detectIptablesBackend(new CommandRunner()), "nft");
});

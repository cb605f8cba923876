import assert from "node:assert/strict";
import type { ExecOptions, ExecResult, Runner } from "../../kernel/exec.ts";
import { readKernelState } from "./ip_apply.ts";

/** Answers reads like a kernel whose fou module is not loaded until `modprobe fou`. */
class FouKernel implements Runner {
  loaded = false;
  commands: string[] = [];
  run(argv: readonly string[], _options?: ExecOptions): Promise<ExecResult> {
    const cmd = argv.join(" ");
    this.commands.push(cmd);
    const ok = (stdout: string) => Promise.resolve({ code: 0, stdout, stderr: "" });
    if (cmd === "modprobe fou") {
      this.loaded = true;
      return ok("");
    }
    if (cmd.includes(" fou show")) {
      if (!this.loaded) return Promise.reject(new Error("RTNETLINK answers: No such file or directory"));
      return ok('[{"port":5556,"gue":null}]');
    }
    return ok(cmd.includes("-j") ? "[]" : "");
  }
}

Deno.test("readKernelState loads fou once when its genetlink family is missing (Debian's kernel)", async () => {
  const k = new FouKernel();
  const st = await readKernelState(k, [4], { fou: true });
  assert.deepEqual(st.fouPorts, ["5556/4"]);
  assert.equal(k.commands.filter((c) => c === "modprobe fou").length, 1);
  // A kernel without fou at all: tried once per runner, then read as none without a process.
  const none = new FouKernel();
  none.run = function (argv) {
    this.commands.push(argv.join(" "));
    return argv.join(" ").includes("fou")
      ? Promise.reject(new Error("no fou"))
      : Promise.resolve({ code: 0, stdout: "[]", stderr: "" });
  };
  assert.deepEqual((await readKernelState(none, [4], { fou: true })).fouPorts, []);
  assert.deepEqual((await readKernelState(none, [4], { fou: true })).fouPorts, []);
  assert.equal(none.commands.filter((c) => c === "modprobe fou").length, 1);
});

/**
 * A `Runner` for kernels without IPVS (tests and benchmarks only): every `ipvsadm` command runs
 * against the IPVS MODEL (`model.ts`) through the same text formats (`-Sn` out, `-R` in,
 * `--set`), everything else goes to the wrapped runner. Records every command.
 *
 * @module
 */
import { ExecError, type ExecOptions, type ExecResult, type Runner } from "../exec.ts";
import { renderSave } from "./codec.ts";
import { IpvsModel, IpvsModelError } from "./model.ts";

export class IpvsModelRunner implements Runner {
  readonly model = new IpvsModel();
  commands: string[] = [];

  constructor(private readonly inner: Runner) {}

  run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    this.commands.push(argv.join(" "));
    if (argv[0] !== "ipvsadm") return this.inner.run(argv, options);
    const ok = (stdout = "") => Promise.resolve({ code: 0, stdout, stderr: "" });
    if (argv[1] === "-Sn") return ok(renderSave(this.model.table));
    if (argv[1] === "-R") return this.#restore(argv, options.stdin ?? "");
    if (argv[1] === "--set") {
      this.model.timeouts = { tcp: Number(argv[2]), tcpfin: Number(argv[3]), udp: Number(argv[4]) };
      return ok();
    }
    if (argv[1] === "-L" && argv[2] === "--timeout") {
      const t = this.model.timeouts;
      return ok(`Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpfin} ${t.udp}\n`);
    }
    return Promise.reject(new Error(`IpvsModelRunner: unsupported ${argv.join(" ")}`));
  }

  /**
   * `ipvsadm -R` as ipvsadm runs it: line by line; a line the kernel refuses prints the kernel's
   * message and the batch goes on (the exit status is the LAST line's); ipvsadm's own checks
   * (`fail(2, …)`) end the batch at once.
   */
  #restore(argv: readonly string[], stdin: string): Promise<ExecResult> {
    const errors: string[] = [];
    let lastFailed = false;
    for (const raw of stdin.split("\n")) {
      if (raw.trim() === "") continue;
      try {
        this.model.restore(raw);
        lastFailed = false;
      } catch (e) {
        if (!(e instanceof IpvsModelError)) return Promise.reject(e);
        errors.push(e.reason);
        if (e.byIpvsadm) return Promise.reject(new ExecError(argv, 2, errors.join("\n") + "\n"));
        lastFailed = true;
      }
    }
    const stderr = errors.length ? errors.join("\n") + "\n" : "";
    if (lastFailed) return Promise.reject(new ExecError(argv, 1, stderr));
    return Promise.resolve({ code: 0, stdout: "", stderr });
  }
}

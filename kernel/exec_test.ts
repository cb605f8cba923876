import assert from "node:assert/strict";
import {
  CommandRunner,
  DryRunRunner,
  ExecError,
  findOffendingLine,
  formatCommand,
  streamLines,
} from "./exec.ts";

const input = "line one\n-A BAD rule\nline three\n";

Deno.test("exec: offending input line from each tool's wording", () => {
  const cases: Array<[string, number]> = [
    ["iptables-restore v1.8.9 (nf_tables): line 2 failed", 2],
    ["iptables-restore: Error occurred at line: 2\nTry `iptables-restore -h'", 2],
    ["ipset v7.17: Error in line 2: The set with the given name does not exist", 2],
    ["Command failed -:2", 2],
    ["/dev/stdin:2:5-9: Error: syntax error", 2],
    ["-:3:1: Error: No such file", 3],
  ];
  for (const [stderr, n] of cases) {
    assert.deepEqual(findOffendingLine(stderr, input), { number: n, text: input.split("\n")[n - 1] }, stderr);
  }
  assert.equal(findOffendingLine("no line here", input), undefined);
  assert.equal(findOffendingLine("line 99 failed", input), undefined, "out of range");
});

Deno.test("exec: a failed command is an ExecError with argv, code, stderr and the rejected line", async () => {
  const r = new CommandRunner();
  const err = await r.run(["sh", "-c", "cat >/dev/null; echo 'Error in line 2: bad' >&2; exit 3"], {
    stdin: input,
  })
    .catch((e) => e);
  assert.ok(err instanceof ExecError);
  assert.equal(err.code, 3);
  assert.deepEqual(err.offendingLine, { number: 2, text: "-A BAD rule" });
  assert.match(err.message, /exited with 3 at input line 2: "-A BAD rule"/);
  assert.equal((await r.run(["sh", "-c", "exit 1"], { okCodes: [0, 1] })).code, 1);
  const missing = await r.run(["/nonexistent/tool"]).catch((e) => e);
  assert.ok(missing instanceof ExecError);
  assert.match(missing.message, /cannot start \/nonexistent\/tool/);
});

Deno.test("exec: dry-run records writes, runs reads, never runs writes", async () => {
  const printed: string[] = [];
  const dry = new DryRunRunner((c) => printed.push(formatCommand(c)), new CommandRunner());
  const read = await dry.run(["echo", "kernel state"], { readOnly: true });
  assert.equal(read.stdout, "kernel state\n");
  const tmp = await Deno.makeTempFile();
  await dry.run(["rm", tmp]);
  assert.ok((await Deno.stat(tmp)).isFile, "a write command was executed under dry-run");
  await dry.run(["ipset", "restore"], { stdin: "create x hash:ip" });
  assert.deepEqual(printed, [`# rm ${tmp}`, "# ipset restore <<'EOF'\ncreate x hash:ip\nEOF"]);
  await Deno.remove(tmp);
});

Deno.test("exec: a payload reaches the tool whole through a file on stdin that is gone once the tool runs", async () => {
  const r = new CommandRunner();
  // 2 MB: far beyond a pipe's buffer, so a pipe would block the writer mid-payload.
  const payload =
    Array.from({ length: 40_000 }, (_, i) => `-A KUBE-TEST-${i} -j ACCEPT # padding ${"x".repeat(20)}`)
      .join("\n") + "\n";
  const seen = await r.run(["sh", "-c", 'ls -l /proc/$$/fd/0 | sed "s/.*-> //"; wc -c'], { stdin: payload });
  const [fd0, bytes] = seen.stdout.trim().split("\n");
  assert.match(fd0, /kube-router-stdin-.* \(deleted\)$/, "stdin is an unlinked file, not a pipe");
  assert.equal(Number(bytes.trim()), new TextEncoder().encode(payload).length);
  // The tool still sees a failure's line numbers as its stdin's.
  const err = await r.run(["sh", "-c", 'read a; read b; echo "line 2: $b" >&2; exit 2'], {
    stdin: "ok\nbad\n",
  }).catch((e) => e);
  assert.ok(err instanceof ExecError);
  assert.equal(err.code, 2);
});

Deno.test("exec: a payload reaches the real tool when `sh` is busybox, whose shell runs its own applet for a bare name", async () => {
  // The agent's image (like Alpine-based ones) has busybox as `sh`: `exec ip` there ran busybox's
  // `ip` applet, which knows no `-batch`, and every router transaction failed in the DaemonSet.
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
  assert.ok(busybox, "busybox is needed here (tests/run.sh installs busybox-static)");
  const dir = await Deno.makeTempDir();
  const path = Deno.env.get("PATH") ?? "";
  try {
    await Deno.symlink(busybox, `${dir}/sh`);
    Deno.env.set("PATH", `${dir}:${path}`);
    const r = await new CommandRunner().run(["ip", "-batch", "-"], { stdin: "link show lo\n" });
    assert.match(r.stdout, /^1: lo:/);
  } finally {
    Deno.env.set("PATH", path);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stream: lines of a long-running command as they come; dry run shows it and starts nothing", async () => {
  const runner = new CommandRunner();
  const lines: string[] = [];
  let exited: number | undefined;
  const h = runner.stream(
    ["sh", "-c", "printf 'a\\nb\\n'; printf c; sleep 0.1; printf '\\n'"],
    (l) => lines.push(l),
    {
      onExit: (code) => (exited = code),
    },
  );
  for (let i = 0; i < 50 && exited === undefined; i++) await new Promise((r) => setTimeout(r, 20));
  await h.close();
  assert.deepEqual(lines, ["a", "b", "c"]);
  assert.equal(exited, 0);
  assert.equal(runner.launched, 1);

  const shown: string[] = [];
  const dry = new DryRunRunner((c) => shown.push(formatCommand(c)));
  const d = streamLines(dry, ["ip", "-o", "monitor", "address"], () => assert.fail("no events in a dry run"));
  await d.close();
  assert.deepEqual(shown, ["# ip -o monitor address"]);
});

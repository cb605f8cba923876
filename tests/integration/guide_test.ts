/**
 * Runs every shell block of `docs/operator-guide.md` and checks the output it shows.
 *
 * A block is a ```sh fence holding a transcript: lines starting with `$ ` are commands (a trailing
 * `\` continues one), the other lines are expected output. The block's commands run as one bash
 * script (`set -e -o pipefail`, so a failing command fails the test; a command expected to fail
 * says so with `|| echo ...`), stderr merged into stdout. Every expected line must appear, in
 * order, as a whole output line; `...` inside a line matches anything, a line `...` alone only
 * documents that output was elided.
 *
 * The environment is what the guide promises: the repository as working directory, `kube-router`
 * on PATH (the bundle-equivalent `deno run -A main.ts`), `kubectl` with `KUBECONFIG` pointing at
 * the real test kube-apiserver, and a fresh network namespace `krguide-<random>` (removed after)
 * in which the example cluster's node-1 address 192.0.2.11/24 sits on a veth pair, so the agent's
 * commands touch nothing outside it. Nothing is sent anywhere but inside that namespace.
 */
import assert from "node:assert/strict";
import { CommandRunner } from "../../kernel/exec.ts";
import { sharedApiServer } from "../fixtures/apiserver.ts";

const root = new URL("../../", import.meta.url).pathname;
const sh = new CommandRunner();

export interface GuideBlock {
  line: number;
  script: string;
  expected: string[];
}

/** The transcripts of a Markdown text. */
export function guideBlocks(md: string): GuideBlock[] {
  const out: GuideBlock[] = [];
  const lines = md.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== "```sh") continue;
    const start = i + 1;
    const cmds: string[] = [];
    const expected: string[] = [];
    let cont = false;
    for (i++; i < lines.length && lines[i].trim() !== "```"; i++) {
      const l = lines[i];
      if (cont || l.startsWith("$ ")) {
        const text: string = cont ? l : l.slice(2);
        cmds.push(text);
        cont = text.endsWith("\\");
      } else if (l.trim() !== "" && l.trim() !== "...") expected.push(l.trimEnd());
    }
    if (cmds.length) out.push({ line: start, script: cmds.join("\n"), expected });
  }
  return out;
}

/** Whether every expected line appears, in order, as a whole line of the output. */
export function matchTranscript(output: string, expected: string[]): string | undefined {
  const got = output.split("\n").map((l) => l.trimEnd());
  let at = 0;
  for (const e of expected) {
    const re = new RegExp(
      "^" + e.split("...").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$",
    );
    while (at < got.length && !re.test(got[at])) at++;
    if (at === got.length) return e;
    at++;
  }
  return undefined;
}

Deno.test("guide: transcript parsing and matching", () => {
  const b = guideBlocks("x\n```sh\n$ echo a \\\n  b\na b\n...\n$ true\n```\n```yaml\n$ no\n```\n");
  assert.deepEqual(b, [{ line: 2, script: "echo a \\\n  b\ntrue", expected: ["a b"] }]);
  assert.equal(matchTranscript("1\na b\n2\n", ["a b", "2"]), undefined);
  assert.equal(matchTranscript("2\na b\n", ["a b", "2"]), "2");
  assert.equal(matchTranscript("I1203 x.ts:1] hello\n", ["I... hello"]), undefined);
});

Deno.test({
  name: "guide: every command of docs/operator-guide.md runs and prints what the guide shows",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const blocks = guideBlocks(await Deno.readTextFile(`${root}docs/operator-guide.md`));
    assert.ok(blocks.length >= 10, `only ${blocks.length} blocks`);
    const api = await sharedApiServer();
    const bin = await Deno.makeTempDir({ prefix: "krguide-bin-" });
    await Deno.writeTextFile(
      `${bin}/kube-router`,
      `#!/bin/sh\nexec ${Deno.execPath()} run -A ${root}main.ts "$@"\n`,
      { mode: 0o755 },
    );
    const ns = `krguide-${crypto.randomUUID().slice(0, 8)}`;
    await sh.run(["ip", "netns", "add", ns]);
    try {
      await sh.run(["ip", "-n", ns, "link", "set", "lo", "up"]);
      await sh.run(["ip", "-n", ns, "link", "add", "krg0", "type", "veth", "peer", "name", "krg1"]);
      await sh.run(["ip", "-n", ns, "addr", "add", "192.0.2.11/24", "dev", "krg0"]);
      await sh.run(["ip", "-n", ns, "link", "set", "krg0", "up"]);
      await sh.run(["ip", "-n", ns, "link", "set", "krg1", "up"]);
      for (const b of blocks) {
        await t.step(`docs/operator-guide.md:${b.line}`, async () => {
          const out = await new Deno.Command("ip", {
            args: ["netns", "exec", ns, "bash", "-e", "-o", "pipefail", "-c", `exec 2>&1\n${b.script}`],
            cwd: root,
            env: {
              PATH: `${bin}:${Deno.execPath().replace(/\/[^/]*$/, "")}:${Deno.env.get("PATH")}`,
              KUBECONFIG: api.kubeconfigPath,
              NO_COLOR: "1",
            },
            stdout: "piped",
            stderr: "inherit",
          }).output();
          const text = new TextDecoder().decode(out.stdout);
          assert.equal(out.code, 0, `block at line ${b.line} exited ${out.code}:\n${b.script}\n---\n${text}`);
          const missing = matchTranscript(text, b.expected);
          assert.equal(
            missing,
            undefined,
            `block at line ${b.line}: expected line not found:\n${missing}\n---\n${text}`,
          );
        });
      }
    } finally {
      await sh.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
      await Deno.remove(bin, { recursive: true });
    }
  },
});

/**
 * Every shipped form of the agent carries the same V8 flags (see v8_flags.ts).
 *
 * @module
 */
import assert from "node:assert/strict";
import { SHIPPED_RUN_FLAGS, shippedV8Arg } from "./v8_flags.ts";

const root = new URL("../", import.meta.url).pathname;
const read = (p: string) => Deno.readTextFileSync(`${root}${p}`);

Deno.test("v8 flags: deno task compile bakes them into the binary", () => {
  const task: string = JSON.parse(read("deno.json")).tasks.compile;
  assert.ok(task.split(/\s+/).includes(shippedV8Arg()), task);
  assert.ok(task.split(/\s+/).includes("--no-code-cache"), task);
});

Deno.test("v8 flags: the image entrypoints (Dockerfile, the cluster suite's image) pass them", () => {
  const docker = read("manifests/Dockerfile").split("\n").find((l) => l.startsWith("ENTRYPOINT"));
  const images = read("tests/cluster/images.sh").split("\n").find((l) =>
    l.includes('"Entrypoint":["/usr/bin/deno"')
  );
  // Each flag quoted, in the order `deno run` needs: its own flags, then V8's, then the bundle.
  const args = [...SHIPPED_RUN_FLAGS, shippedV8Arg(), "/opt/kube-router/main.js"];
  assert.ok(docker?.replaceAll(", ", ",").includes(args.map((a) => `"${a}"`).join(",")), docker);
  assert.ok(images?.includes(args.map((a) => `"${a}"`).join(",")), images);
});

Deno.test("v8 flags: the cluster suite's process mode runs the agent with them", () => {
  const runs = read("tests/cluster/kcluster.sh").split("\n").filter((l) =>
    / run .*dist\/kube-router\/main\.js/.test(l)
  );
  assert.ok(runs.length >= 2);
  for (const l of runs) {
    assert.ok(
      l.includes(` run -A ${SHIPPED_RUN_FLAGS.join(" ")} ${shippedV8Arg()} "$repo/dist/kube-router/main.js"`),
      l,
    );
  }
});

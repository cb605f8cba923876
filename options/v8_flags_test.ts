/**
 * Every shipped form of the agent carries the same V8 flags (see v8_flags.ts).
 *
 * @module
 */
import assert from "node:assert/strict";
import { shippedV8Arg } from "./v8_flags.ts";

const root = new URL("../", import.meta.url).pathname;
const read = (p: string) => Deno.readTextFileSync(`${root}${p}`);

Deno.test("v8 flags: deno task compile bakes them into the binary", () => {
  const task: string = JSON.parse(read("deno.json")).tasks.compile;
  assert.ok(task.split(/\s+/).includes(shippedV8Arg()), task);
});

Deno.test("v8 flags: the image entrypoints (Dockerfile, the cluster suite's image) pass them", () => {
  const docker = read("manifests/Dockerfile").split("\n").find((l) => l.startsWith("ENTRYPOINT"));
  assert.ok(docker?.includes(`"${shippedV8Arg()}"`), docker);
  const images = read("tests/cluster/images.sh").split("\n").find((l) =>
    l.includes('"Entrypoint":["/usr/bin/deno"')
  );
  assert.ok(images?.includes(`"${shippedV8Arg()}"`), images);
});

Deno.test("v8 flags: the cluster suite's process mode runs the agent with them", () => {
  const runs = read("tests/cluster/kcluster.sh").split("\n").filter((l) =>
    / run .*dist\/kube-router\/main\.js/.test(l)
  );
  assert.ok(runs.length >= 2);
  for (const l of runs) assert.ok(l.includes(shippedV8Arg()), l);
});

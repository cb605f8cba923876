import assert from "node:assert/strict";
import { importSpecifiers, placeOf, resolveSpecifier, violation } from "./floors.ts";

const ROOT = new URL(".", import.meta.url).pathname;
const SKIP = new Set([".git", "tools", "node_modules", "dist", "tests", "bench"]);

/** Every non-test .ts module of the tree, repository-relative. */
async function modules(dir = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(ROOT + dir)) {
    const path = dir + e.name;
    if (e.isDirectory && !SKIP.has(e.name)) out.push(...await modules(path + "/"));
    else if (e.isFile && e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) out.push(path);
  }
  return out;
}

Deno.test("floors: no module imports up a floor, into a sibling library or into another controller", async () => {
  const files = await modules();
  assert.ok(files.length > 100, `found only ${files.length} modules: is ROOT ${ROOT} the repository?`);
  const problems: string[] = [];
  let edges = 0;
  for (const from of files) {
    const src = await Deno.readTextFile(ROOT + from);
    for (const spec of importSpecifiers(src)) {
      edges++;
      const why = violation({ from, to: resolveSpecifier(from, spec) });
      if (why) problems.push(why);
    }
  }
  assert.ok(edges > 300, `read only ${edges} imports: the import reader is broken`);
  assert.deepEqual(problems, []);
});

Deno.test("floors: every module of the tree stands on a floor", async () => {
  const outside = (await modules()).filter((f) => !placeOf(f) && f !== "floors.ts");
  assert.deepEqual(outside, [], "give new top-level folders a floor in floors.ts");
});

Deno.test("floors: the import reader sees static, type, re-export, side-effect and dynamic imports", () => {
  const src = [
    `/** import { x } from "./in_a_comment.ts"; */`,
    `// import "./in_a_line_comment.ts";`,
    `import "./quiet.ts";`,
    `import { a,`,
    `  b } from "../cmd/errors.ts";`,
    `import type { T } from "./types.ts";`,
    `export { c } from "./c.ts";`,
    `export * from "./all.ts";`,
    `const s = "import { y } from './in_a_string.ts'";`,
    `const { run } = await import("./cmd/run.ts");`,
  ].join("\n");
  assert.deepEqual(importSpecifiers(src).sort(), [
    "../cmd/errors.ts",
    "./all.ts",
    "./c.ts",
    "./cmd/run.ts",
    "./quiet.ts",
    "./types.ts",
  ]);
  assert.equal(resolveSpecifier("watch/kube/config.ts", "../../cmd/errors.ts"), "cmd/errors.ts");
  assert.equal(resolveSpecifier("main.ts", "./cmd/run.ts"), "cmd/run.ts");
});

Deno.test("floors: the edges the old tree had are refused", () => {
  // The first four kinds were in the tree before the ground floor existed (issue 11).
  for (
    const [from, to] of [
      ["watch/api.ts", "cmd/errors.ts"],
      ["controllers/proxy/types.ts", "cmd/options.ts"],
      ["controllers/router/advertise.ts", "cmd/flag_parse.ts"],
      ["controllers/router/routes.ts", "bgp/prefix.ts"],
      ["controllers/loadbalancer/allocate.ts", "bgp/codec/types.ts"],
      ["net/ip.ts", "bgp/mod.ts"],
      ["bgp/config.ts", "watch/types.ts"],
      ["kernel/exec.ts", "observe/log.ts"],
      ["controllers/router/routes.ts", "controllers/proxy/plan.ts"],
      ["controllers/runner.ts", "controllers/proxy/mod.ts"],
      ["controllers/proxy/plan.ts", "tests/fixtures/agent.ts"],
      ["bgp/speaker.ts", "@kubernetes/client-node"],
    ]
  ) {
    assert.ok(violation({ from, to }), `${from} -> ${to} should be refused`);
  }
  for (
    const [from, to] of [
      ["watch/api.ts", "errors/mod.ts"],
      ["controllers/router/routes.ts", "bgp/mod.ts"],
      ["controllers/proxy/controller.ts", "controllers/controller.ts"],
      ["controllers/trace/trace.ts", "controllers/proxy/plan.ts"],
      ["cmd/run.ts", "controllers/registry.ts"],
      ["watch/api.ts", "@kubernetes/client-node"],
    ]
  ) {
    assert.equal(violation({ from, to }), undefined, `${from} -> ${to} should be allowed`);
  }
});

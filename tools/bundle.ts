/**
 * `deno task bundle`: the code-split bundle the image and the cluster suite run
 * (dist/kube-router/), with one rewrite of the bundler's output.
 *
 * Why the rewrite: the bundle's shared helper chunk, which every chunk imports, resolves the
 * `require` of the CommonJS packages inside it (client-node, yaml) through `node:module`'s
 * `createRequire`, imported statically. That loaded Node's module loader at every start: ~40 ms
 * of CPU and ~3 MB resident for an agent that needs no `require` (client-node loads only for
 * `annotate` and the LoadBalancer allocator). The rewrite makes it lazy: a built-in module comes
 * from `process.getBuiltinModule` (the same objects), and `createRequire` is loaded only for
 * anything else. If a Deno upgrade changes the helper, the build fails here rather than ship
 * the change unnoticed.
 *
 *   deno run -A tools/bundle.ts [--outdir DIR]     (default dist/kube-router)
 *
 * @module
 */
const root = new URL("../", import.meta.url).pathname;
const at = Deno.args.indexOf("--outdir");
const out = at >= 0 ? Deno.args[at + 1] : `${root}dist/kube-router`;

const EAGER = 'import { createRequire as __deno_internal_createRequire } from "node:module";\n' +
  "var __require = __deno_internal_createRequire(import.meta.url);\n";
const LAZY = "var __require_cjs;\n" +
  "var __require = (id) => globalThis.process.getBuiltinModule(id) ??\n" +
  '  (__require_cjs ??= globalThis.process.getBuiltinModule("node:module").createRequire(import.meta.url))(id);\n';

await Deno.remove(out, { recursive: true }).catch(() => {});
const built = await new Deno.Command(Deno.execPath(), {
  args: ["bundle", "--quiet", "--platform=deno", "--code-splitting", "--outdir", out, "main.ts"],
  cwd: root,
}).output();
if (!built.success) {
  console.error(new TextDecoder().decode(built.stderr));
  Deno.exit(1);
}

const rewritten: string[] = [];
for (const e of Deno.readDirSync(out)) {
  if (!e.name.endsWith(".js")) continue;
  const path = `${out}/${e.name}`;
  const text = Deno.readTextFileSync(path);
  if (!text.includes("__deno_internal_createRequire")) continue;
  if (text.split(EAGER).length !== 2) {
    console.error(
      `tools/bundle.ts: ${e.name} uses createRequire in a form this script does not know; review it`,
    );
    Deno.exit(1);
  }
  Deno.writeTextFileSync(path, text.replace(EAGER, LAZY));
  rewritten.push(e.name);
}
if (rewritten.length !== 1) {
  console.error(`tools/bundle.ts: expected one helper chunk with createRequire, found ${rewritten.length}`);
  Deno.exit(1);
}

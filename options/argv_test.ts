import assert from "node:assert/strict";
import { walkArgs } from "./argv.ts";

const missing = (name: string) => new Error(`${name} needs a value`);

Deno.test("argv: --name=value, --name value, positionals and bare flags", () => {
  const seen: string[] = [];
  for (const a of walkArgs(["peers", "--port=80", "--table", "in", "-h", "--x=a=b"], missing)) {
    if (a.name === "--port" || a.name === "--table" || a.name === "--x") seen.push(`${a.name}:${a.value()}`);
    else seen.push(a.name);
  }
  assert.deepEqual(seen, ["peers", "--port:80", "--table:in", "-h", "--x:a=b"]);
});

Deno.test("argv: a flag without its value throws the caller's error", () => {
  assert.throws(() => {
    for (const a of walkArgs(["--port"], missing)) a.value();
  }, /--port needs a value/);
});

Deno.test("argv: peek and take pass a separate value on", () => {
  const out: string[] = [];
  for (const a of walkArgs(["--manifests", "f.yaml", "--json", "x"], missing)) {
    out.push(a.raw);
    const next = a.peek();
    if (a.name === "--manifests" && a.inline === undefined && next !== undefined) out.push(`=${a.take()}`);
  }
  assert.deepEqual(out, ["--manifests", "=f.yaml", "--json", "x"]);
});

import assert from "node:assert/strict";
import { ConfigError } from "../errors/mod.ts";
import { manifestSource } from "./manifests.ts";

const NODE = (name: string, ip: string) => `
apiVersion: v1
kind: Node
metadata: { name: ${name} }
spec: { podCIDR: 10.244.${ip}.0/24 }
status: { addresses: [{ type: InternalIP, address: 192.0.2.${ip} }] }
`;

Deno.test("manifests: multi-doc, List, implicit namespaces, bad objects skipped, re-read on change", async () => {
  const dir = await Deno.makeTempDir();
  const problems: string[] = [];
  await Deno.writeTextFile(`${dir}/nodes.yaml`, `${NODE("node-1", "1")}---${NODE("node-2", "2")}`);
  await Deno.writeTextFile(
    `${dir}/apps.yaml`,
    `apiVersion: v1
kind: List
items:
- { apiVersion: v1, kind: Service, metadata: { name: web, namespace: shop }, spec: { clusterIP: 10.96.0.10, ports: [{ port: 80 }] } }
- { apiVersion: v1, kind: Service, metadata: { name: broken, namespace: shop }, spec: { ports: [{ port: 0 }] } }
- { apiVersion: apps/v1, kind: Deployment, metadata: { name: ignored } }
`,
  );
  const src = await manifestSource(dir, { onProblem: (m) => problems.push(m), debounceMs: 20 });
  try {
    await src.ready;
    const s = src.current();
    assert.deepEqual([...s.nodes.keys()].sort(), ["node-1", "node-2"]);
    assert.deepEqual(s.nodes.get("node-2")!.internalIPs, ["192.0.2.2"]);
    // A bad port drops that port only: the Service is kept, without it.
    assert.deepEqual([...s.services.keys()].sort(), ["shop/broken", "shop/web"]);
    assert.deepEqual(s.services.get("shop/broken")!.ports, []);
    assert.ok(s.namespaces.has("shop"), "namespaces used by objects exist implicitly");
    assert.equal(problems.length, 1);
    assert.match(problems[0], /apps\.yaml: items\[1\]: Service shop\/broken: spec\.ports\[0\]\.port 0 /);

    const changed = new Promise<void>((resolve) => src.subscribe((c) => c.kinds.has("Node") && resolve()));
    await Deno.writeTextFile(`${dir}/nodes.yaml`, NODE("node-1", "1"));
    await changed;
    assert.deepEqual([...src.current().nodes.keys()], ["node-1"]);

    // A half-written file keeps its previous objects.
    await Deno.writeTextFile(`${dir}/apps.yaml`, "kind: Service\nmetadata: { name: [unclosed");
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(src.current().services.has("shop/web"));
    assert.ok(problems.some((p) => p.includes("keeping its previous objects")));
  } finally {
    await src.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("manifests: a missing path is a clear error", async () => {
  await assert.rejects(
    manifestSource("/nonexistent/cluster.yaml"),
    /--manifests "\/nonexistent\/cluster\.yaml"/,
  );
});

const svcJson = (name: string, ip: string) =>
  JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: "shop" },
      spec: { clusterIP: ip, ports: [{ port: 80 }] },
    },
    null,
    2,
  );

async function withDir<T>(files: Record<string, string>, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "kr-manifests-" });
  try {
    for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, text);
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function load(dir: string) {
  const problems: string[] = [];
  const src = await manifestSource(dir, { onProblem: (m) => problems.push(m), watch: false });
  try {
    await src.ready;
    return { snap: src.current(), problems };
  } finally {
    await src.close();
  }
}

Deno.test("manifests: JSON documents separated by --- (issue 14 #3), and concatenated JSON values", async () => {
  await withDir({
    "a.json": `${svcJson("a", "10.96.0.1")}\n---\n${svcJson("b", "10.96.0.2")}\n`,
    "c.json": `${svcJson("c", "10.96.0.3")}${svcJson("d", "10.96.0.4")}\n`,
    "mixed.yaml": `# generated\n---\n${svcJson("e", "10.96.0.5")}\n---\nkind: Service\n` +
      `metadata: { name: f, namespace: shop }\nspec: { clusterIP: 10.96.0.6, ports: [{ port: 80 }] }\n`,
  }, async (dir) => {
    const { snap, problems } = await load(dir);
    assert.deepEqual(problems, []);
    assert.deepEqual(
      [...snap.services.keys()].sort(),
      ["a", "b", "c", "d", "e", "f"].map((n) => `shop/${n}`),
    );
  });
});

Deno.test("manifests: kind List and *List are flattened; a bad item is named by document and index", async () => {
  const list = (kind: string, items: unknown[]) => JSON.stringify({ apiVersion: "v1", kind, items });
  await withDir({
    "l.json": `${list("List", [JSON.parse(svcJson("a", "10.96.0.1"))])}\n---\n${
      list("ServiceList", [JSON.parse(svcJson("b", "10.96.0.2")), { kind: "Service", metadata: {} }])
    }`,
  }, async (dir) => {
    const { snap, problems } = await load(dir);
    assert.deepEqual([...snap.services.keys()].sort(), ["shop/a", "shop/b"]);
    assert.equal(problems.length, 1);
    assert.match(
      problems[0],
      /l\.json: document 2: items\[1\]: Service <unnamed>: metadata\.name is missing/,
    );
  });
});

Deno.test("manifests: one bad document skips only that document, named by file and number", async () => {
  await withDir({
    "s.yaml": `${svcJson("a", "10.96.0.1")}\n---\nkind: Service\nmetadata: { name: [unclosed\n---\n` +
      `{ "kind": "Service", "metadata": { "name": "x" }\n---\n${svcJson("d", "10.96.0.4")}\n`,
  }, async (dir) => {
    const { snap, problems } = await load(dir);
    assert.deepEqual([...snap.services.keys()].sort(), ["shop/a", "shop/d"]);
    assert.equal(problems.length, 2, problems.join("\n"));
    assert.match(problems[0], /s\.yaml: document 2: .*document skipped/);
    assert.match(problems[1], /s\.yaml: document 3: .*document skipped/);
  });
});

Deno.test("manifests: at start-up a file with no valid object is an error, not an empty cluster", async () => {
  const cases: Record<string, [string, RegExp]> = {
    "all documents bad": ["kind: Service\nmetadata: { name: [unclosed\n", /bad\.yaml: no valid object/],
    "every object skipped": ['{"kind":"Service","metadata":{"name":"UPPER"}}', /bad\.yaml: no valid object/],
    "empty": ["# nothing here\n", /bad\.yaml: holds no object/],
  };
  for (const [what, [text, re]] of Object.entries(cases)) {
    await withDir({ "good.yaml": svcJson("a", "10.96.0.1"), "bad.yaml": text }, async (dir) => {
      await assert.rejects(load(dir), (e: Error) => {
        assert.ok(e instanceof ConfigError, `${what}: ${e}`);
        assert.match(e.message, re, what);
        assert.match(e.message, /refusing to start/);
        return true;
      });
    });
  }
});

Deno.test("manifests: a FIFO named *.yaml is refused without blocking", async () => {
  await withDir({ "good.yaml": svcJson("a", "10.96.0.1") }, async (dir) => {
    await new Deno.Command("mkfifo", { args: [`${dir}/pipe.yaml`] }).output();
    const started = Date.now();
    await assert.rejects(load(dir), /pipe\.yaml: not a regular file .*refused/);
    await assert.rejects(load(`${dir}/pipe.yaml`), /not a regular file or a directory; refused/);
    assert.ok(Date.now() - started < 5000, "the FIFO was never opened");
  });
});

Deno.test("manifests: a near miss of a kind we read is reported; other kinds are ignored quietly", async () => {
  const obj = (kind: string, name: string) => JSON.stringify({ kind, metadata: { name, namespace: "shop" } });
  await withDir({
    "k.json": [
      svcJson("a", "10.96.0.1"),
      obj("Servce", "t1"),
      obj("networkpolicy", "t2"),
      obj("Role", "r"),
      obj("ClusterRole", "cr"),
      obj("Deployment", "d"),
      obj("Job", "j"),
    ].join("\n---\n"),
  }, async (dir) => {
    const { problems } = await load(dir);
    assert.deepEqual(problems.map((p) => p.replace(/^.*document \d+: /, "")), [
      'kind "Servce" is not one we read (did you mean Service?); skipped',
      'kind "networkpolicy" is not one we read (did you mean NetworkPolicy?); skipped',
    ]);
  });
});

import assert from "node:assert/strict";
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
    assert.deepEqual([...s.services.keys()], ["shop/web"]);
    assert.ok(s.namespaces.has("shop"), "namespaces used by objects exist implicitly");
    assert.equal(problems.length, 1);
    assert.match(problems[0], /Service shop\/broken: spec\.ports\[0\]\.port 0/);

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

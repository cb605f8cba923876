/**
 * The shipped manifests are valid Kubernetes objects: the real API server accepts them in a
 * server-side dry run (schema, defaulting and admission), and the example cluster's
 * kube-router.io annotations pass `kube-router annotate --validate`.
 */
import assert from "node:assert/strict";
import { sharedApiServer } from "../fixtures/apiserver.ts";
import { runAnnotate } from "../../cmd/annotate.ts";

const root = new URL("../../", import.meta.url).pathname;
const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("manifests: rbac.yaml and daemonset.yaml pass a server-side dry run", opts, async () => {
  const api = await sharedApiServer();
  for (const f of ["rbac.yaml", "daemonset.yaml"]) {
    const r = await api.kubectl(["apply", "--dry-run=server", "-f", `${root}manifests/${f}`]);
    assert.match(r.stdout, /created \(server dry run\)/, f);
  }
});

Deno.test("manifests: the example cluster's objects are accepted by the API server", opts, async () => {
  const api = await sharedApiServer();
  const r = await api.kubectl(["apply", "--dry-run=server", "-f", `${root}manifests/examples/cluster.yaml`], {
    okCodes: [0, 1],
  });
  // Namespaced objects in namespaces that do not exist yet are refused in a dry run; everything else must pass.
  const bad = r.stderr.split("\n").filter((l) => l.trim() && !/namespaces? ".*" not found/.test(l));
  assert.deepEqual(bad, []);
});

Deno.test("manifests: example annotations are valid", async () => {
  let out = "";
  const code = await runAnnotate(
    ["--validate", "-f", `${root}manifests/examples/cluster.yaml`],
    (s) => (out += s),
  );
  assert.equal(code, 0);
  assert.match(out, /3 nodes and 5 services have valid kube-router\.io annotations/);
});

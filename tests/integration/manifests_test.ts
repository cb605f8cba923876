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

const daemonsets = [...Deno.readDirSync(`${root}manifests`)]
  .map((e) => e.name)
  .filter((n) => /^daemonset(-[a-z-]+)?\.yaml$/.test(n))
  .sort();

Deno.test("manifests: rbac.yaml and every DaemonSet variant pass a server-side dry run", opts, async () => {
  assert.deepEqual(daemonsets, [
    "daemonset-dsr.yaml",
    "daemonset-firewall.yaml",
    "daemonset-router-firewall-peer.yaml",
    "daemonset-service-proxy.yaml",
    "daemonset.yaml",
  ]);
  const api = await sharedApiServer();
  for (const f of ["rbac.yaml", ...daemonsets]) {
    const r = await api.kubectl(["apply", "--dry-run=server", "-f", `${root}manifests/${f}`]);
    assert.match(r.stdout, /created \(server dry run\)/, f);
  }
});

// What the real cluster needs of every variant (tests/cluster/run.sh daemonset proves the default one):
// the API server through a node-local kubeconfig, never the ClusterIP the agent programs; every
// NoExecute taint tolerated (it is the node's network); the CNI variants install a .conflist whose
// bridge has hairpinMode, plus the plugins, from an init container.
Deno.test("manifests: every DaemonSet reaches the API server node-locally and tolerates NoExecute", async () => {
  const { parseAllDocuments } = await import("yaml");
  for (const f of daemonsets) {
    const docs = parseAllDocuments(await Deno.readTextFile(`${root}manifests/${f}`)).map((d) => d.toJSON());
    const ds = docs.find((d) => d?.kind === "DaemonSet");
    assert.ok(ds, f);
    const spec = ds.spec.template.spec;
    const agent = spec.containers.find((c: { name: string }) => c.name === "kube-router");
    assert.ok(agent.args.includes("--kubeconfig=/var/lib/kube-router/kubeconfig"), f);
    assert.ok(
      spec.tolerations.some((t: { effect?: string; operator?: string }) =>
        t.effect === "NoExecute" && t.operator === "Exists"
      ),
      f,
    );
    const runsRouter = !agent.args.includes("--run-router=false");
    if (runsRouter) {
      const cm = docs.find((d) => d?.kind === "ConfigMap" && d.metadata.name === "kube-router-cfg");
      const conf = JSON.parse(cm.data["cni-conf.json"]);
      const bridge = conf.plugins.find((p: { type: string }) => p.type === "bridge");
      assert.equal(bridge.hairpinMode, true, f);
      assert.ok(conf.plugins.some((p: { type: string }) => p.type === "portmap"), f);
      const env = Object.fromEntries(
        agent.env.map((e: { name: string; value?: string }) => [e.name, e.value]),
      );
      assert.equal(env.KUBE_ROUTER_CNI_CONF_FILE, "/etc/cni/net.d/10-kuberouter.conflist", f);
      assert.equal(spec.initContainers?.[0]?.name, "install-cni", f);
    }
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

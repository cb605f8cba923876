/**
 * The API server fixture against the real kube-apiserver + etcd built by tests/servers/build.sh.
 *
 * Address conventions: the servers listen on 127.0.0.1 (random ports) only; pod/host IPs written
 * into pod status are documentation values (10.251.x.y pods, 10.250.0.x nodes) that nothing routes.
 * Kubernetes object names carry a random suffix so runs against a shared server do not collide.
 */

import assert from "node:assert/strict";
import { ExecError } from "../../kernel/exec.ts";
import { type ApiServer, sharedApiServer, startApiServer } from "../fixtures/apiserver.ts";

const suffix = crypto.randomUUID().slice(0, 6);
// The shared server outlives single tests (and holds an HTTP client), by design.
const shared = { sanitizeResources: false, sanitizeOps: false };

function podYaml(ns: string, name: string, node: string): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {app: fx}}
spec:
  nodeName: ${node}
  containers: [{name: c, image: registry.invalid/none:1}]
`;
}

// deno-lint-ignore no-explicit-any
type Json = any;

Deno.test({
  name: "apiserver: kubectl creates, reads, annotates and deletes a namespace and pods",
  ...shared,
  async fn() {
    const api = await sharedApiServer();
    const ns = `fx-api-${suffix}`;
    await api.kubectl(["create", "namespace", ns]);
    try {
      await api.kubectl(["apply", "-f", "-"], { stdin: podYaml(ns, "web-1", "node-1") });
      await api.kubectl(["apply", "-f", "-"], { stdin: podYaml(ns, "web-2", "node-2") });
      const list = JSON.parse((await api.kubectl(["get", "pods", "-n", ns, "-o", "json"])).stdout);
      assert.deepEqual(list.items.map((p: Json) => p.metadata.name).sort(), ["web-1", "web-2"]);
      // No scheduler or kubelet runs: a pod stays Pending with no IP until a test says otherwise.
      assert.equal(list.items[0].status.phase, "Pending");
      assert.equal(list.items[0].status.podIP, undefined);

      await api.kubectl(["annotate", "pod", "web-1", "-n", ns, "kube-router.io/test=yes"]);
      const pod = await api.request("GET", `/api/v1/namespaces/${ns}/pods/web-1`) as Json;
      assert.equal(pod.metadata.annotations["kube-router.io/test"], "yes");

      // Graceful deletion waits for a kubelet that does not exist: delete with grace period 0.
      await api.kubectl(["delete", "pod", "web-2", "-n", ns, "--grace-period=0", "--force"]);
      const after = (await api.kubectl(["get", "pods", "-n", ns, "-o", "name"])).stdout.trim();
      assert.equal(after, "pod/web-1");
    } finally {
      await api.kubectl(["delete", "namespace", ns, "--wait=false"]);
    }
    // No namespace controller runs (no controller-manager), so the namespace stays Terminating.
    const phase = JSON.parse((await api.kubectl(["get", "namespace", ns, "-o", "json"])).stdout).status.phase;
    assert.equal(phase, "Terminating");
  },
});

Deno.test({
  name: "apiserver: setPodStatus writes podIP(s), hostIP, phase and Ready like a kubelet would",
  ...shared,
  async fn() {
    const api = await sharedApiServer();
    const ns = `fx-status-${suffix}`;
    await api.kubectl(["create", "namespace", ns]);
    try {
      await api.kubectl(["apply", "-f", "-"], { stdin: podYaml(ns, "db", "node-1") });
      await api.setPodStatus(ns, "db", { podIP: "10.251.1.7", hostIP: "10.250.0.1", phase: "Running" });
      const pod = JSON.parse((await api.kubectl(["get", "pod", "db", "-n", ns, "-o", "json"])).stdout);
      assert.equal(pod.status.phase, "Running");
      assert.equal(pod.status.podIP, "10.251.1.7");
      assert.deepEqual(pod.status.podIPs, [{ ip: "10.251.1.7" }]);
      assert.equal(pod.status.hostIP, "10.250.0.1");
      assert.equal(pod.status.conditions.find((c: Json) => c.type === "Ready").status, "True");
      const wide = (await api.kubectl(["get", "pod", "db", "-n", ns, "-o", "wide", "--no-headers"])).stdout;
      assert.match(wide, /Running\s+0\s+\S+\s+10\.251\.1\.7\s+node-1/);
    } finally {
      await api.kubectl(["delete", "namespace", ns, "--wait=false"]);
    }
  },
});

Deno.test({
  name: "apiserver: RBAC is enforced for the kube-router user, the admin is system:masters",
  ...shared,
  async fn() {
    const api = await sharedApiServer();
    assert.ok(api.tokens["kube-router"], "the kube-router token is known");
    const kc = await api.kubeconfigFor("kube-router");
    const canI = (kubeconfig: string) =>
      api.kubectl(["--kubeconfig", kubeconfig, "auth", "can-i", "list", "pods", "--all-namespaces"], {
        okCodes: [0, 1],
      });
    assert.equal((await canI(api.kubeconfigPath)).stdout.trim(), "yes");
    assert.equal((await canI(kc)).stdout.trim(), "no");
    await assert.rejects(
      api.kubectl(["--kubeconfig", kc, "get", "pods", "-A"]),
      (e: unknown) => e instanceof ExecError && /forbidden/i.test(e.stderr),
    );
  },
});

Deno.test({
  name: "apiserver: a private server restarts on the same port and keeps its data in etcd",
  async fn() {
    let api: ApiServer | undefined;
    try {
      api = await startApiServer();
      const ns = `fx-restart-${suffix}`;
      await api.kubectl(["create", "namespace", ns]);
      await api.kubectl(["apply", "-f", "-"], { stdin: podYaml(ns, "keep", "node-1") });
      const before = await api.request("GET", `/api/v1/namespaces/${ns}/pods/keep`) as Json;
      const url = api.url;

      await api.down();
      await assert.rejects(api.kubectl(["get", "ns", ns, "--request-timeout=2s"]));
      await api.up();
      assert.equal(api.url, url);
      const after = await api.request("GET", `/api/v1/namespaces/${ns}/pods/keep`) as Json;
      assert.equal(after.metadata.uid, before.metadata.uid);
      assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion);

      await api.restart({ downMs: 200, signal: "SIGKILL" }); // a crash, not a shutdown
      assert.equal(
        (await api.kubectl(["get", "pod", "keep", "-n", ns, "-o", "name"])).stdout.trim(),
        "pod/keep",
      );
    } finally {
      await api?.stop();
    }
  },
});

Deno.test({
  name: "apiserver: the shared instance refuses restart (other tests are using it)",
  ...shared,
  async fn() {
    const api = await sharedApiServer();
    await assert.rejects(api.restart(), /startApiServer/);
  },
});

Deno.test({
  name: "apiserver: Services get cluster IPs from 10.96.0.0/12, dual-stack ones also from 2001:db8:96::/112",
  ...shared,
  async fn() {
    const api = await sharedApiServer();
    const ns = `fx-svc-${suffix}`;
    await api.kubectl(["create", "namespace", ns]);
    const svc = (name: string, policy: string) => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: ns },
      spec: { ipFamilyPolicy: policy, selector: { app: name }, ports: [{ port: 80, protocol: "TCP" }] },
    });
    await api.kubectl(["apply", "-f", "-"], {
      stdin: JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [svc("v4", "SingleStack"), svc("ds", "RequireDualStack")],
      }),
    });
    const get = async (name: string) =>
      JSON.parse((await api.kubectl(["get", "service", name, "-n", ns, "-o", "json"])).stdout).spec;
    const v4 = await get("v4");
    assert.match(v4.clusterIP, /^10\.(9[6-9]|10[0-9]|11[01])\./);
    const ds = await get("ds");
    assert.deepEqual(ds.ipFamilies, ["IPv4", "IPv6"]);
    assert.match(ds.clusterIPs[1], /^2001:db8:96::/);
  },
});

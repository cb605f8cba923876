/**
 * The lab written into the real API server (tests/fixtures/cluster.ts), and `kubectl --watch`
 * against it.
 *
 * Address conventions: lab defaults (node network 10.250.0.0/24, pod CIDRs 10.251.i.0/24) inside
 * namespaces `lab-<6 hex>-*` this test creates; the API server on 127.0.0.1. Node and namespace
 * names carry a random suffix because the API server may be shared by the whole run.
 */

import assert from "node:assert/strict";
import { sharedApiServer } from "../fixtures/apiserver.ts";
import { deletePodObject, ensureNamespace, registerLabNodes, registerLabPod } from "../fixtures/cluster.ts";
import { createLab } from "../fixtures/lab.ts";

const suffix = crypto.randomUUID().slice(0, 6);
// deno-lint-ignore no-explicit-any
type Json = any;

Deno.test({
  name: "cluster: lab nodes and pods appear as Ready nodes and Running pods with the lab's addresses",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const api = await sharedApiServer();
    await using lab = await createLab({
      ipv6: true,
      nodes: [{ name: `n1-${suffix}` }, { name: `n2-${suffix}` }],
    });
    await lab.addPod(`n1-${suffix}`, { name: "web" });
    await lab.addPod(`n2-${suffix}`, { name: "db" });
    const ns = `fx-cluster-${suffix}`;
    await ensureNamespace(api, ns, { team: "a" });
    await registerLabNodes(api, lab);
    await registerLabPod(api, lab, "web", { namespace: ns, labels: { app: "web" }, ports: [{ port: 80 }] });
    await registerLabPod(api, lab, "db", { namespace: ns, labels: { app: "db" } });

    const node = JSON.parse((await api.kubectl(["get", "node", `n2-${suffix}`, "-o", "json"])).stdout);
    assert.equal(node.spec.podCIDR, "10.251.2.0/24");
    assert.deepEqual(node.spec.podCIDRs, ["10.251.2.0/24", "2001:db8:251:2::/64"]);
    assert.deepEqual(node.status.addresses.slice(0, 2), [
      { type: "InternalIP", address: "10.250.0.2" },
      { type: "InternalIP", address: "2001:db8:250::2" },
    ]);
    assert.equal(node.status.conditions.find((c: Json) => c.type === "Ready").status, "True");

    const pods = JSON.parse((await api.kubectl(["get", "pods", "-n", ns, "-o", "json"])).stdout).items;
    const byName = Object.fromEntries(pods.map((p: Json) => [p.metadata.name, p]));
    assert.equal(byName.web.status.podIP, "10.251.1.2");
    assert.deepEqual(byName.web.status.podIPs, [{ ip: "10.251.1.2" }, { ip: "2001:db8:251:1::2" }]);
    assert.equal(byName.web.status.hostIP, "10.250.0.1");
    assert.equal(byName.web.spec.nodeName, `n1-${suffix}`);
    assert.equal(byName.web.spec.containers[0].ports[0].containerPort, 80);
    assert.equal(byName.db.status.phase, "Running");

    await deletePodObject(api, ns, "db");
    assert.equal((await api.kubectl(["get", "pods", "-n", ns, "-o", "name"])).stdout.trim(), "pod/web");
  },
});

Deno.test({
  name: "cluster: kubectl --watch streams add, modify and delete events from the API server",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const api = await sharedApiServer();
    const ns = `fx-watch-${suffix}`;
    await ensureNamespace(api, ns);
    const watch = new Deno.Command("kubectl", {
      args: [
        "--kubeconfig",
        api.kubeconfigPath,
        "get",
        "configmaps",
        "-n",
        ns,
        "--watch",
        "--output-watch-events",
        "-o",
        'jsonpath={.type} {.object.metadata.name} {.object.data.v}{"\\n"}',
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const events: string[] = [];
    const reader = (async () => {
      let buf = "";
      for await (const chunk of watch.stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        const parts = buf.split("\n");
        buf = parts.pop()!;
        events.push(...parts.filter(Boolean));
      }
    })();
    const waitFor = async (n: number) => {
      for (let i = 0; i < 100 && events.length < n; i++) await new Promise((r) => setTimeout(r, 100));
    };
    try {
      // kubectl lists before it watches, so even a create that beats the watch shows as ADDED.
      await new Promise((r) => setTimeout(r, 300));
      await api.kubectl(["create", "configmap", "c1", "-n", ns, "--from-literal=v=1"]);
      await waitFor(1);
      await api.kubectl(["patch", "configmap", "c1", "-n", ns, "-p", '{"data":{"v":"2"}}']);
      await waitFor(2);
      await api.kubectl(["delete", "configmap", "c1", "-n", ns]);
      await waitFor(3);
      assert.deepEqual(events, ["ADDED c1 1", "MODIFIED c1 2", "DELETED c1 2"]);
    } finally {
      watch.kill();
      await watch.status;
      await reader;
    }
  },
});

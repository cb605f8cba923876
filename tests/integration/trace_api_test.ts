/**
 * `kube-router trace` against a live API server: objects created with kubectl on the real
 * kube-apiserver, read by trace through `--kubeconfig` and the same watch source the agent uses.
 * Addresses: documentation ranges only (nodes 192.0.2.41-42, pods 10.244.41-42.0/24, the Service's
 * ClusterIP allocated by the API server from 10.96.0.0/12); nothing is sent anywhere. Names carry a
 * random suffix (`tr<suffix>`) so other users of the shared API server are not disturbed.
 */
import assert from "node:assert/strict";
import { sharedApiServer } from "../fixtures/apiserver.ts";
import { runAgent } from "../fixtures/agent.ts";
import { createNodeObject, createPodObject, ensureNamespace } from "../fixtures/cluster.ts";

Deno.test({
  name: "trace on a live API server: policies, backends and the verdict from the real objects",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const api = await sharedApiServer();
    const sfx = crypto.randomUUID().slice(0, 6);
    const ns = `tr${sfx}`;
    const nodes = [`tr-a-${sfx}`, `tr-b-${sfx}`];
    try {
      await ensureNamespace(api, ns);
      await createNodeObject(api, { name: nodes[0], ip: "192.0.2.41", podCidr: "10.244.41.0/24" });
      await createNodeObject(api, { name: nodes[1], ip: "192.0.2.42", podCidr: "10.244.42.0/24" });
      const pods: Array<[string, number, string, Record<string, string>]> = [
        ["web", 0, "10.244.41.5", { app: "web" }],
        ["cli", 1, "10.244.42.7", { app: "cli" }],
        ["other", 1, "10.244.42.8", { app: "other" }],
      ];
      for (const [name, n, ip, labels] of pods) {
        await createPodObject(api, {
          namespace: ns,
          name,
          node: nodes[n],
          labels,
          ip,
          hostIP: n === 0 ? "192.0.2.41" : "192.0.2.42",
          ports: [{ port: 8080, name: "http" }],
        });
      }
      const apply = (obj: unknown) => api.kubectl(["apply", "-f", "-"], { stdin: JSON.stringify(obj) });
      await apply({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "web", namespace: ns },
        spec: { selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] },
      });
      await apply({
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: { name: "web-1", namespace: ns, labels: { "kubernetes.io/service-name": "web" } },
        addressType: "IPv4",
        ports: [{ name: "", port: 8080, protocol: "TCP" }],
        endpoints: [{
          addresses: ["10.244.41.5"],
          conditions: { ready: true },
          nodeName: nodes[0],
          targetRef: { kind: "Pod", namespace: ns, name: "web" },
        }],
      });
      await apply({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "web-from-cli", namespace: ns },
        spec: {
          podSelector: { matchLabels: { app: "web" } },
          ingress: [{ from: [{ podSelector: { matchLabels: { app: "cli" } } }], ports: [{ port: 8080 }] }],
        },
      });
      const trace = async (from: string) => {
        const out = await runAgent([
          "trace",
          `${ns}/${from}`,
          `svc/${ns}/web`,
          "--json",
          "--kubeconfig",
          api.kubeconfigPath,
        ]);
        assert.ok(out.code === 0 || out.code === 1, out.stderr);
        return { code: out.code, report: JSON.parse(out.stdout) };
      };
      const ok = await trace("cli");
      assert.equal(ok.code, 0);
      assert.equal(ok.report.service.name, `${ns}/web`);
      assert.deepEqual(ok.report.reachable, [`${ns}/web`]);
      const toWeb = ok.report.paths[0];
      assert.equal(toWeb.target.port, 8080);
      assert.deepEqual(toWeb.target.policies.ingress, [`${ns}/web-from-cli`]);
      assert.deepEqual(
        toWeb.firewall.map((f: { node: string; direction: string }) => `${f.node} ${f.direction}`),
        [
          `${nodes[1]} egress`,
          `${nodes[0]} ingress`,
        ],
      );
      assert.match(toWeb.route, /^route 10\.244\.41\.0\/24 via 192\.0\.2\.41/);
      const denied = await trace("other");
      assert.equal(denied.code, 1);
      assert.equal(denied.report.verdict, "rejected");
      assert.match(denied.report.paths[0].firewall.at(-1).decidedBy, /REJECT traffic of POD/);
    } finally {
      await api.kubectl(["delete", "namespace", ns, "--wait=false"], { okCodes: [0, 1] });
      for (const n of nodes) await api.kubectl(["delete", "node", n], { okCodes: [0, 1] });
    }
  },
});

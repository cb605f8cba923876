/**
 * Bad values of every `kube-router.io/*` node annotation (bad_input_cases.ts), fed the way
 * production feeds them: each case is a Node created in the real API server (addresses written
 * to its status, as the kubelet does) and read back through the agent's own API source (the real
 * client library). For each case the router's plan, with that node as the local one, must name
 * the node, the annotation and the value in a problem, and contain it: the node still runs its
 * speaker, peers with the good node and advertises its pod CIDR (unless the pod CIDR is the bad
 * value); and the good node's plan has no problem and peers with every case node. Then
 * `kube-router annotate --validate` must refuse the same values (exit 2, one line per case).
 *
 * Addresses are API data only: nodes 192.0.2.100-199, pod CIDRs 10.248.0.0/16.
 */
import assert from "node:assert/strict";
import { defaultOptions } from "../../options/mod.ts";
import { planRouter } from "../../controllers/router/plan.ts";
import { apiSource } from "../../watch/api.ts";
import { NODE_ANNOTATION_CASES } from "./bad_input_cases.ts";

const root = new URL("../../", import.meta.url).pathname;
const id = crypto.randomUUID().slice(0, 6);
const name = (i: number | "good") => `ban-${id}-${i}`;
const ip = (i: number) => `192.0.2.${100 + i}`;
const GOOD = 99;

// deno-lint-ignore no-explicit-any
function nodeObject(i: number, annotations: Record<string, string>): any {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: name(i === GOOD ? "good" : i), annotations },
    spec: { podCIDR: `10.248.${i}.0/24`, podCIDRs: [`10.248.${i}.0/24`] },
    status: { addresses: [{ type: "InternalIP", address: ip(i) }] },
  };
}

const objects = [
  ...NODE_ANNOTATION_CASES.map((c, i) => nodeObject(i, { ...c.with, [c.key]: c.value })),
  nodeObject(GOOD, {}),
];

Deno.test({
  name:
    `bad input: ${NODE_ANNOTATION_CASES.length} bad node annotations through the API server: named, contained`,
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const { sharedApiServer } = await import("../fixtures/apiserver.ts");
  const api = await sharedApiServer();
  for (const o of objects) {
    const { status, ...spec } = o;
    await api.request("POST", "/api/v1/nodes", spec);
    await api.request(
      "PATCH",
      `/api/v1/nodes/${o.metadata.name}/status`,
      { status },
      "application/merge-patch+json",
    );
  }
  const src = await apiSource({ kubeconfig: api.kubeconfigPath, backoff: { initialMs: 200, maxMs: 1000 } });
  try {
    await src.ready;
    const deadline = Date.now() + 20_000;
    const mine = () => [...src.current().nodes.values()].filter((n) => n.name.startsWith(`ban-${id}-`));
    while (mine().some((n) => n.internalIPs.length === 0) || mine().length < objects.length) {
      if (Date.now() > deadline) throw new Error("the API source never showed every node with its address");
      await new Promise((r) => setTimeout(r, 100));
    }
    // Only this test's nodes (the shared server holds other tests' too).
    const snapshot = { ...src.current(), nodes: new Map(mine().map((n) => [n.name, n])) };
    const options = { ...defaultOptions(), enableIpv6: false };

    for (const [i, c] of NODE_ANNOTATION_CASES.entries()) {
      await t.step(`${c.key}=${JSON.stringify(c.value)}`, () => {
        const node = name(i);
        // Some keys are read in one mode only (node.asn without the full mesh): plan under both.
        const problems = [true, false].flatMap((nodesFullMesh) =>
          planRouter({ snapshot, options: { ...options, nodesFullMesh }, nodeName: node }).problems
        );
        const named = problems.filter((p) =>
          p.object === `node/${node}` && p.field.includes(c.key) && c.problem.test(p.message)
        );
        assert.ok(
          named.length > 0,
          `no problem naming node/${node} ${c.key}: ${JSON.stringify(problems, null, 1)}`,
        );
        const plan = planRouter({ snapshot, options, nodeName: node });
        assert.ok(plan.speaker, "the node's speaker is still planned");
        assert.ok(plan.peers.some((p) => p.address === ip(GOOD)), "the node still peers with the good node");
        if (!c.key.includes("pod-cidr")) {
          assert.ok(
            plan.advertisements.some((a) => a.prefix === `10.248.${i}.0/24`),
            "the node still advertises its pod CIDR",
          );
        }
      });
    }

    await t.step("the good node: no problem, peers with every case node", () => {
      const plan = planRouter({ snapshot, options, nodeName: name("good") });
      assert.deepEqual(plan.problems.filter((p) => p.object === `node/${name("good")}`), []);
      const addresses = new Set(plan.peers.map((p) => p.address));
      // A node that is a route-reflector client peers only with servers; one whose rr.server is
      // bad is not a server: every other case node is a full-mesh peer of the good node.
      const expected = NODE_ANNOTATION_CASES.flatMap((c, i) =>
        c.key === "kube-router.io/rr.client" ? [] : [ip(i)]
      );
      for (const a of expected) assert.ok(addresses.has(a), `no peer ${a}: ${[...addresses]}`);
    });
  } finally {
    await src.close();
    for (const o of objects) await api.request("DELETE", `/api/v1/nodes/${o.metadata.name}`).catch(() => {});
  }

  await t.step("annotate --validate refuses every bad value (exit 2, one line each)", async () => {
    const dir = await Deno.makeTempDir({ prefix: "kr-bad-node-ann-" });
    try {
      const file = `${dir}/nodes.yaml`;
      await Deno.writeTextFile(file, objects.map((o) => JSON.stringify(o)).join("\n---\n") + "\n");
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${root}main.ts`, "annotate", "--validate", "-f", file],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 2, err);
      for (const [i, c] of NODE_ANNOTATION_CASES.entries()) {
        const line = err.split("\n").find((l) =>
          l.includes(`node/${name(i)}:`) && l.includes(c.key) && c.problem.test(l)
        );
        assert.ok(line, `annotate --validate did not refuse ${c.key}=${JSON.stringify(c.value)}:\n${err}`);
      }
      assert.ok(!err.includes(`node/${name("good")}:`), `the good node was refused:\n${err}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

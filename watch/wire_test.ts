import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { isModelInstance, toWire } from "./wire.ts";
import { networkPolicyFromApi } from "./convert.ts";

function modelPolicy(): k8s.V1NetworkPolicy {
  const block = Object.assign(new k8s.V1IPBlock(), { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] });
  const peer = Object.assign(new k8s.V1NetworkPolicyPeer(), { ipBlock: block });
  const rule = Object.assign(new k8s.V1NetworkPolicyIngressRule(), { _from: [peer], ports: undefined });
  const meta = Object.assign(new k8s.V1ObjectMeta(), {
    name: "p",
    namespace: "a",
    creationTimestamp: new Date("2024-05-01T10:00:00Z"),
  });
  const spec = Object.assign(new k8s.V1NetworkPolicySpec(), { podSelector: {}, ingress: [rule] });
  return Object.assign(new k8s.V1NetworkPolicy(), { metadata: meta, spec });
}

Deno.test("toWire undoes the model's renames (_from → from), Dates and undefined attributes", () => {
  const wire = toWire(modelPolicy()) as unknown as Record<string, unknown>;
  assert.deepEqual(JSON.parse(JSON.stringify(wire)), {
    metadata: { name: "p", namespace: "a", creationTimestamp: "2024-05-01T10:00:00.000Z" },
    spec: {
      podSelector: {},
      ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] } }] }],
    },
  });
  assert.ok(!isModelInstance(wire));
});

Deno.test("toWire leaves raw JSON (watch events, manifests) untouched, same object", () => {
  const raw = { metadata: { name: "p" }, spec: { ingress: [{ from: [] }] } };
  assert.equal(toWire(raw), raw);
});

Deno.test("a model policy converts with its peers (never 'from anywhere')", () => {
  const p = networkPolicyFromApi(toWire(modelPolicy()));
  assert.deepEqual(p.ingress[0].peers, [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] } }]);
  // Even without wire.ts, conversion does not read a model's `_from` as absent.
  const direct = networkPolicyFromApi(modelPolicy());
  assert.equal(direct.ingress[0].peers.length, 1);
});

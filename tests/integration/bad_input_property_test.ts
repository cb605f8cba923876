/**
 * Property tests of the data side (issue 9): for generated API objects, good and bad values
 * mixed (addresses that are not, ports out of range, unknown protocols and operators, CIDRs that
 * do not parse, colliding names), conversion reports instead of throwing except for unusable
 * objects, the planners never throw, and every transaction they render passes the tool's own
 * check: `ipset restore` (no check mode: applied into a scratch namespace), then
 * `iptables-restore --test` / `ip6tables-restore --test`, and `nft -c -f` for the firewall's
 * and the proxy's tables. Needs root (one scratch namespace `krprop…`, removed at the end).
 *
 * Addresses exist only as generated data inside that namespace.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { CommandRunner, ExecError } from "../../kernel/exec.ts";
import * as ipt from "../../kernel/iptables/mod.ts";
import * as ipset from "../../kernel/ipset/mod.ts";
import { objectsToMaps } from "../../watch/manifests.ts";
import type { ClusterSnapshot } from "../../watch/types.ts";
import { planFirewall } from "../../controllers/firewall/plan.ts";
import { fwOptions } from "../../controllers/firewall/testing.ts";
import { setDefinition } from "../../controllers/firewall/iptables_apply.ts";
import { ruleLine } from "../../controllers/firewall/iptables_render.ts";
import { renderNftTable } from "../../controllers/firewall/nft_render.ts";
import { tempSetName } from "../../controllers/firewall/names.ts";
import { plan as proxyPlan } from "../../controllers/proxy/plan.ts";
import { nodeA, proxyOptions } from "../../controllers/proxy/testing.ts";
import { renderFull, renderState } from "../../controllers/proxy/nft_render.ts";

const IPS = [
  "10.96.0.10",
  "10.96.0.11",
  "10.201.0.5",
  "10.201.0.6",
  "192.0.2.10",
  "198.51.100.7",
  "2001:db8::5",
  "2001:db8:96::a",
  "192.0.2.311",
  "node.example.com",
  "",
  "01.2.3.4",
  "::ffff:10.0.0.1",
  "0.0.0.0",
  "255.255.255.255",
  "fe80::1%eth0",
  "10.0.0.1/24",
];
const CIDRS = [
  "10.0.0.0/8",
  "10.1.2.3/16",
  "0.0.0.0/0",
  "::/0",
  "2001:db8::/64",
  "10.0.0.0/33",
  "x/1",
  "192.168.1.1/32",
  "10.0.0.0",
  "172.16.0.0/12",
];
const ip = fc.constantFrom(...IPS);
const cidr = fc.constantFrom(...CIDRS);
const port = fc.oneof(
  fc.integer({ min: -2, max: 70000 }),
  fc.constantFrom(80, 443, 53, 8080, 30080, "http", "dns", "80", "abc!", null, 1.5),
);
const proto = fc.constantFrom("TCP", "UDP", "SCTP", "ICMP", undefined, "tcp");
const ns = fc.constantFrom("a", "b");
const name = fc.constantFrom("web", "db", "c", "Bad_Name", "x");
const labels = fc.dictionary(fc.constantFrom("app", "tier"), fc.constantFrom("web", "db"), { maxKeys: 2 });
const selector = fc.oneof(
  fc.constant({}),
  fc.record({ matchLabels: labels }),
  fc.record({
    matchExpressions: fc.array(
      fc.record({
        key: fc.constantFrom("app", "tier"),
        operator: fc.constantFrom("In", "NotIn", "Exists", "DoesNotExist", "Bogus"),
        values: fc.array(fc.constantFrom("web", "db"), { maxLength: 2 }),
      }),
      { maxLength: 2 },
    ),
  }),
);
const peer = fc.oneof(
  fc.record({ podSelector: selector }),
  fc.record({ namespaceSelector: selector, podSelector: fc.option(selector, { nil: undefined }) }),
  fc.record({ ipBlock: fc.record({ cidr, except: fc.array(cidr, { maxLength: 2 }) }) }),
  fc.constant({}),
);
const npPort = fc.record({
  port: fc.option(port, { nil: undefined }),
  protocol: proto,
  endPort: fc.option(port, { nil: undefined }),
});
const rule = (side: "from" | "to") =>
  fc.record({
    [side]: fc.option(fc.array(peer, { maxLength: 3 }), { nil: undefined }),
    ports: fc.option(fc.array(npPort, { maxLength: 2 }), { nil: undefined }),
  });

const node = fc.record({
  kind: fc.constant("Node"),
  metadata: fc.record({ name: fc.constantFrom("node-a", "node-b") }),
  spec: fc.record({ podCIDR: cidr }),
  status: fc.record({
    addresses: fc.array(fc.record({ type: fc.constantFrom("InternalIP", "ExternalIP"), address: ip }), {
      maxLength: 2,
    }),
  }),
});
const pod = fc.record({
  kind: fc.constant("Pod"),
  metadata: fc.record({ name, namespace: ns, labels }),
  spec: fc.record({
    nodeName: fc.constantFrom("node-a", "node-b"),
    hostNetwork: fc.boolean(),
    containers: fc.array(
      fc.record({
        name: fc.constant("c"),
        ports: fc.array(
          fc.record({ name: fc.constantFrom("http", "dns"), containerPort: port, protocol: proto }),
          { maxLength: 2 },
        ),
      }),
      { minLength: 1, maxLength: 2 },
    ),
  }),
  status: fc.record({ phase: fc.constantFrom("Running", "Pending", "Succeeded"), podIP: ip }),
});
const service = fc.record({
  kind: fc.constant("Service"),
  metadata: fc.record({
    name,
    namespace: ns,
    annotations: fc.dictionary(
      fc.constantFrom(
        "kube-router.io/service.scheduler",
        "kube-router.io/service.local",
        "kube-router.io/service.hairpin",
      ),
      fc.constantFrom("rr", "sh", "bogus", "true", ""),
      { maxKeys: 2 },
    ),
  }),
  spec: fc.record({
    type: fc.constantFrom("ClusterIP", "NodePort", "LoadBalancer", "Weird"),
    clusterIP: ip,
    externalIPs: fc.array(ip, { maxLength: 2 }),
    ports: fc.array(
      fc.record({
        name: fc.constantFrom("http", "dns", ""),
        port,
        targetPort: port,
        nodePort: port,
        protocol: proto,
      }),
      { maxLength: 3 },
    ),
    sessionAffinity: fc.constantFrom("None", "ClientIP"),
    externalTrafficPolicy: fc.constantFrom("Cluster", "Local"),
  }),
  status: fc.record({ loadBalancer: fc.record({ ingress: fc.array(fc.record({ ip }), { maxLength: 2 }) }) }),
});
const slice = fc.record({
  kind: fc.constant("EndpointSlice"),
  metadata: fc.record({
    name: fc.constantFrom("s1", "s2", "s3"),
    namespace: ns,
    labels: fc.record({ "kubernetes.io/service-name": name }),
  }),
  addressType: fc.constantFrom("IPv4", "IPv6", "FQDN", "Bogus"),
  endpoints: fc.array(
    fc.record({
      addresses: fc.array(ip, { minLength: 1, maxLength: 2 }),
      conditions: fc.record({ ready: fc.boolean() }),
      nodeName: fc.constantFrom("node-a", "node-b"),
    }),
    { maxLength: 3 },
  ),
  ports: fc.array(fc.record({ name: fc.constantFrom("http", "dns", ""), port, protocol: proto }), {
    maxLength: 2,
  }),
});
const netpol = fc.record({
  kind: fc.constant("NetworkPolicy"),
  metadata: fc.record({ name, namespace: ns }),
  spec: fc.record({
    podSelector: selector,
    policyTypes: fc.option(fc.subarray(["Ingress", "Egress", "Bogus"]), { nil: undefined }),
    ingress: fc.option(fc.array(rule("from"), { maxLength: 2 }), { nil: undefined }),
    egress: fc.option(fc.array(rule("to"), { maxLength: 2 }), { nil: undefined }),
  }),
});
const cluster = fc.array(fc.oneof(node, pod, pod, service, service, slice, netpol, netpol), {
  maxLength: 14,
});

/** Converts like the manifests source does; reports instead of throwing. */
function snapshotOf(objects: unknown[]): { snap: ClusterSnapshot; problems: string[] } {
  const problems: string[] = [];
  const maps = objectsToMaps(objects, (m) => problems.push(m));
  // deno-lint-ignore no-explicit-any
  const m = (k: string) => maps.get(k as never)! as Map<string, any>;
  return {
    problems,
    snap: {
      revision: 1,
      nodes: m("Node"),
      pods: m("Pod"),
      namespaces: m("Namespace"),
      services: m("Service"),
      endpointSlices: m("EndpointSlice"),
      networkPolicies: m("NetworkPolicy"),
    },
  };
}

const fwOpts = fwOptions({ enableIpv6: true });
const pxOpts = proxyOptions({
  enableIpv6: true,
  serviceExternalIpRange: ["198.51.100.0/24"],
  loadbalancerIpRange: ["198.51.100.0/24", "2001:db8::/32"],
});

Deno.test("property: generated API objects never make conversion or the planners throw", () => {
  fc.assert(
    fc.property(cluster, (objects) => {
      const { snap } = snapshotOf(objects);
      for (const n of ["node-a", "node-b"]) planFirewall(snap, fwOpts, n);
      proxyPlan(snap, pxOpts, nodeA());
      proxyPlan(
        snap,
        pxOpts,
        nodeA({ ipv6: "2001:db8::10", localAddresses: ["192.0.2.10", "2001:db8::10"] }),
      );
    }),
    { numRuns: 400 },
  );
});

Deno.test({
  name: "property: every transaction rendered from generated objects passes the tool's own check",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const root = new CommandRunner();
  const netns = `krprop-${crypto.randomUUID().slice(0, 8)}`;
  await root.run(["ip", "netns", "add", netns]);
  const sh = new CommandRunner(netns);
  let checked = 0;
  try {
    await fc.assert(
      fc.asyncProperty(cluster, async (objects) => {
        const { snap } = snapshotOf(objects);
        const fw = planFirewall(snap, fwOpts, "node-a");
        const what = (tool: string, e: unknown) =>
          `${tool} refused a rendered transaction: ${e instanceof ExecError ? e.message : e}`;
        // ipset has no check mode: apply into the scratch namespace, from empty.
        await sh.run(["ipset", "destroy"], { okCodes: [0, 1] });
        const sets = fw.families.flatMap((f) => [...f.sets.values()].map(setDefinition));
        if (sets.length) {
          const script = ipset.renderSwapScript({ sets, existing: new Map(), tempName: tempSetName });
          await sh.run(["ipset", "restore"], { stdin: script }).catch((e) => assert.fail(what("ipset", e)));
        }
        for (const f of fw.families) {
          const replaceChains = new Map(
            [...f.chains].map(([n, rules]) => [n, rules.map((r) => ruleLine(r, f.family).args)]),
          );
          const payload = ipt.renderNoflush({ table: "filter", replaceChains });
          const tool = f.family === "ipv4" ? "iptables-restore" : "ip6tables-restore";
          await sh.run([tool, "--test", "--noflush"], { stdin: payload }).catch((e) =>
            assert.fail(what(tool, e))
          );
          await sh.run(["nft", "-c", "-f", "-"], { stdin: renderNftTable(f) })
            .catch((e) => assert.fail(what("nft (firewall)", e)));
        }
        const px = proxyPlan(snap, pxOpts, nodeA({ ipv6: "2001:db8::10" }));
        for (const fam of [4, 6] as const) {
          await sh.run(["nft", "-c", "-f", "-"], { stdin: renderFull(renderState(px, fam)) })
            .catch((e) => assert.fail(what(`nft (proxy, IPv${fam})`, e)));
        }
        checked++;
      }),
      { numRuns: 40 },
    );
  } finally {
    await root.run(["ip", "netns", "del", netns], { okCodes: [0, 1] });
  }
  assert.equal(checked >= 40, true);
});

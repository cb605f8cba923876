/**
 * End-to-end service proxy suite, nftables mode: two lab nodes and an outside client; Services,
 * EndpointSlices and Pods created with kubectl on the real API server (there is no endpoint
 * controller, so the test writes the EndpointSlices as one would); one proxy controller per node
 * fed by the API watch source, running in this process with every kernel command executed inside
 * its node's namespace. Every claim is checked with real connections, and for each probed
 * connection `kube-router trace` (over the same snapshot) must name exactly the backends the real
 * packets reached, or say "rejected" where the connection was refused.
 *
 * Addresses (lab conventions): nodes 10.250.0.1 (n1) and .2 (n2), client 10.250.0.100; pods
 * 10.251.1.0/24 on n1 and 10.251.2.0/24 on n2; ClusterIPs and NodePorts allocated by the API server
 * (10.96.0.0/12, 30000-32767); external IPs 198.51.100.0/24. Kubernetes names carry a random
 * suffix (`px<suffix>`) so other users of the shared API server are not disturbed.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { defaultOptions } from "../../options/mod.ts";
import type { ControllerContext } from "../../controllers/controller.ts";
import { ProxyController } from "../../controllers/proxy/controller.ts";
import { proxyCleanup } from "../../controllers/proxy/mod.ts";
import { runController } from "../../controllers/runner.ts";
import { CommandRunner } from "../../kernel/exec.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { apiSource, type SnapshotSource } from "../../watch/mod.ts";
import type { ServiceInfo } from "../../watch/types.ts";
import { type ApiServer, sharedApiServer } from "../fixtures/apiserver.ts";
import { createNodeObject, createPodObject, ensureNamespace } from "../fixtures/cluster.ts";
import { createLab, type Lab } from "../fixtures/lab.ts";
import { traceConnection } from "../../controllers/trace/trace.ts";

async function until<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 20_000,
) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Ep {
  pod: string;
  node: "n1" | "n2";
  ready?: boolean;
  terminating?: boolean;
}

class World {
  readonly suffix = crypto.randomUUID().slice(0, 6);
  readonly ns = `px${this.suffix}`;
  readonly warnings: string[] = [];
  constructor(readonly api: ApiServer, readonly lab: Lab) {}

  nodeName(n: string): string {
    return `px-${n}-${this.suffix}`;
  }

  kubectl(args: string[], stdin?: string) {
    return this.api.kubectl(args, stdin === undefined ? undefined : { stdin });
  }

  async service(name: string, spec: Record<string, unknown>, annotations: Record<string, string> = {}) {
    await this.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name, namespace: this.ns, annotations },
        spec: { ports: [{ port: 80, targetPort: 8080, protocol: "TCP" }], ...spec },
      }),
    );
  }

  async endpoints(service: string, eps: Ep[], port = { port: 8080, protocol: "TCP" }, sliceName = service) {
    await this.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: {
          name: sliceName,
          namespace: this.ns,
          labels: {
            "kubernetes.io/service-name": service,
            "endpointslice.kubernetes.io/managed-by": "px-test",
          },
        },
        addressType: "IPv4",
        ports: [{ name: "", ...port }],
        endpoints: eps.map((e) => ({
          addresses: [this.lab.host(e.pod).ip],
          conditions: { ready: e.ready ?? true, serving: true, terminating: e.terminating ?? false },
          nodeName: this.nodeName(e.node),
          targetRef: { kind: "Pod", namespace: this.ns, name: e.pod },
        })),
      }),
    );
  }
}

function ctxFor(w: World, node: "n1" | "n2", extra: Record<string, unknown> = {}): ControllerContext {
  const log = getLogger(["kube-router", "proxy", node]);
  return {
    options: {
      ...defaultOptions(),
      serviceProxyMode: "nftables",
      ipvsSyncPeriod: 60_000,
      serviceExternalIpRange: ["198.51.100.0/24"],
      ...extra,
    },
    runner: new CommandRunner(w.lab.node(node).netns),
    nodeName: w.nodeName(node),
    log: new Proxy(log, {
      get: (t, p) =>
        p === "warn"
          ? (m: unknown, props?: Record<string, unknown>) => {
            w.warnings.push(`${String(m)} ${JSON.stringify(props ?? {})}`);
            t.warn(String(m), props ?? {});
          }
          : Reflect.get(t, p).bind(t),
    }),
    metrics: new MetricsRegistry(),
    dryRun: false,
  };
}

Deno.test({
  name: "service proxy e2e (nftables mode) through the real API server",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const api = await sharedApiServer();
    await using lab = await createLab({ prefix: "px", nodes: [{ name: "n1" }, { name: "n2" }] });
    const w = new World(api, lab);
    const abort = new AbortController();
    let src: SnapshotSource | undefined;
    const ctrls: Record<string, ProxyController> = {};
    try {
      // Lab: endpoints w1, h1 (n1) and w2 (n2); clients cl1 (n1) and cl2 (n2); outside client.
      const pods = { w1: "n1", h1: "n1", cl1: "n1", w2: "n2", w3: "n2", cl2: "n2" } as const;
      for (const [name, node] of Object.entries(pods)) await lab.addPod(node, { name });
      const client = await lab.addClient("client");
      await lab.exec("client", ["ip", "route", "add", "198.51.100.0/24", "via", lab.node("n1").ip]);
      for (const p of ["w1", "h1", "w2", "w3"]) await lab.serve(p, { tcp: [8080], udp: [5353] });
      // CNI "hairpinMode": true on h1's port.
      await lab.exec("n1", [
        "ip",
        "link",
        "set",
        "dev",
        lab.pods.get("h1")!.hostVeth,
        "type",
        "bridge_slave",
        "hairpin",
        "on",
      ]);

      await ensureNamespace(api, w.ns);
      for (const n of ["n1", "n2"] as const) {
        const ln = lab.node(n);
        await createNodeObject(api, { name: w.nodeName(n), ip: ln.ip, podCidr: ln.podCidr });
      }
      for (const [name, node] of Object.entries(pods)) {
        await createPodObject(api, {
          namespace: w.ns,
          name,
          node: w.nodeName(node),
          ip: lab.host(name).ip,
          hostIP: lab.node(node).ip,
          ports: [{ port: 8080 }],
        });
      }

      await w.service("web", { type: "NodePort", externalIPs: ["198.51.100.10"] });
      await w.endpoints("web", [{ pod: "w1", node: "n1" }, { pod: "w2", node: "n2" }, {
        pod: "w3",
        node: "n2",
      }]);
      await w.service("sticky", { sessionAffinity: "ClientIP" });
      await w.endpoints("sticky", [{ pod: "w1", node: "n1" }, { pod: "w2", node: "n2" }, {
        pod: "w3",
        node: "n2",
      }]);
      await w.service("local", { type: "NodePort", externalTrafficPolicy: "Local" });
      await w.endpoints("local", [{ pod: "w1", node: "n1" }, { pod: "w2", node: "n2" }, {
        pod: "w3",
        node: "n2",
      }]);
      await w.service("hp", {}, { "kube-router.io/service.hairpin": "" });
      await w.endpoints("hp", [{ pod: "h1", node: "n1" }]);
      await w.service("dns", { ports: [{ port: 53, targetPort: 5353, protocol: "UDP" }] });
      await w.endpoints("dns", [{ pod: "w1", node: "n1" }], { port: 5353, protocol: "UDP" });
      // Bad input: unknown scheduler, unsupported DSR mode, no endpoints.
      await w.service("odd", {}, {
        "kube-router.io/service.scheduler": "bogus",
        "kube-router.io/service.dsr": "direct",
      });
      await w.endpoints("odd", [{ pod: "w2", node: "n2" }]);
      await w.service("empty", {});

      src = await apiSource({ kubeconfig: api.kubeconfigPath, backoff: { initialMs: 200, maxMs: 1000 } });
      await src.ready;
      for (const n of ["n1", "n2"] as const) {
        ctrls[n] = new ProxyController(ctxFor(w, n), { healthChecks: false });
        runController(ctrls[n], src, { signal: abort.signal, minIntervalMs: 50 });
      }
      const s = src;
      const svcOf = (name: string) =>
        until(`service ${name}`, () => s.current().services.get(`${w.ns}/${name}`)) as Promise<ServiceInfo>;
      const web = await svcOf("web");
      const vip = (x: ServiceInfo) => x.clusterIPs[0];
      const nodePort = (x: ServiceInfo) => x.ports[0].nodePort;
      /** Waits until both controllers program `key` with exactly these endpoint IPs (live ones). */
      const programmed = (key: string, ips: string[], on = ["n1", "n2"]) =>
        until(`${key} → ${ips.join(",")}`, () =>
          on.every((n) => {
            const vs = ctrls[n].applied?.services.find((v) => v.key === key);
            const live = vs?.realServers.filter((r) => r.weight > 0).map((r) => r.ip).sort() ?? [];
            return JSON.stringify(live) === JSON.stringify([...ips].sort());
          }));
      const ip = (p: string) => lab.host(p).ip;
      await programmed(`tcp/${vip(web)}:80`, [ip("w1"), ip("w2"), ip("w3")]);
      const many = (from: string, addr: string, port: number, n: number, proto: "tcp" | "udp" = "tcp") =>
        lab.probeMany(Array.from({ length: n }, () => ({ from, proto, ip: addr, port, timeoutMs: 1500 })));
      const allOk = (rs: Awaited<ReturnType<typeof many>>, what: string) =>
        assert.ok(
          rs.every((r) => r.status === "connected"),
          `${what}: ${JSON.stringify(rs.filter((r) => r.status !== "connected"))}`,
        );
      /**
       * What `kube-router trace` says about the connection from a lab host (pod or client) to
       * addr:port, with the options the controllers run with: the backend pod names it reaches,
       * or "rejected".
       */
      const traceSays = (
        from: string,
        addr: string,
        port: number,
        o: { proto?: "tcp" | "udp"; entry?: "n1" | "n2"; extra?: Record<string, unknown> } = {},
      ) => {
        const r = traceConnection(s.current(), { ...ctxFor(w, "n1", o.extra).options }, {
          // Pods by name (another run's objects on the shared API server may reuse the lab's
          // addresses); the outside client by its address.
          from: from in pods ? `${w.ns}/${from}` : lab.host(from).ip,
          to: addr,
          port,
          protocol: o.proto ?? "tcp",
          ...(o.entry ? { entryNode: w.nodeName(o.entry) } : {}),
        });
        assert.ok(
          r.reachable.every((n) => n.startsWith(`${w.ns}/`)),
          `backends of another run: ${r.reachable}`,
        );
        return r.verdict === "rejected" && r.paths.length === 0
          ? "rejected"
          : r.reachable.map((n) => n.split("/")[1]).sort().join(",");
      };
      const servers = (rs: Awaited<ReturnType<typeof many>>) =>
        [...new Set(rs.map((r) => r.server!))].sort().join(",");

      await t.step("ClusterIP from a pod on the same node: every endpoint gets traffic", async () => {
        const rs = await many("cl1", vip(web), 80, 40);
        allOk(rs, "ClusterIP same node");
        assert.deepEqual(new Set(rs.map((r) => r.server)), new Set(["w1", "w2", "w3"]));
        assert.equal(traceSays("cl1", vip(web), 80), servers(rs));
        assert.ok(rs.every((r) => r.clientIp === ip("cl1")), "pod source kept");
      });
      await t.step("ClusterIP from a pod on another node", async () => {
        const rs = await many("cl2", vip(web), 80, 30);
        allOk(rs, "ClusterIP other node");
        assert.deepEqual(new Set(rs.map((r) => r.server)), new Set(["w1", "w2", "w3"]));
        assert.equal(traceSays("cl2", vip(web), 80), servers(rs));
      });
      await t.step("NodePort from an outside client (masqueraded, policy Cluster)", async () => {
        const rs = await many("client", lab.node("n1").ip, nodePort(web), 30);
        allOk(rs, "NodePort");
        assert.deepEqual(new Set(rs.map((r) => r.server)), new Set(["w1", "w2", "w3"]));
        assert.equal(traceSays("client", lab.node("n1").ip, nodePort(web)!), servers(rs));
        assert.ok(rs.every((r) => r.clientIp !== client.ip));
      });
      await t.step("externalIP from the outside client", async () => {
        const rs = await many("client", "198.51.100.10", 80, 30);
        allOk(rs, "externalIP");
        // The client's route to 198.51.100.0/24 is via n1: that is the entry node.
        assert.equal(traceSays("client", "198.51.100.10", 80, { entry: "n1" }), servers(rs));
      });
      await t.step("ClientIP affinity holds", async () => {
        const sticky = await svcOf("sticky");
        await programmed(`tcp/${vip(sticky)}:80`, [ip("w1"), ip("w2"), ip("w3")]);
        for (const from of ["cl1", "cl2"]) {
          const rs = await many(from, vip(sticky), 80, 15);
          allOk(rs, "affinity");
          assert.equal(new Set(rs.map((r) => r.server)).size, 1, `${from}: ${rs.map((r) => r.server)}`);
          // Affinity picks one of the backends trace names.
          assert.ok(traceSays(from, vip(sticky), 80).split(",").includes(rs[0].server!));
        }
      });
      await t.step("externalTrafficPolicy Local: client source kept, only local endpoints", async () => {
        const local = await svcOf("local");
        await programmed(`tcp/${lab.node("n2").ip}:${nodePort(local)}`, [ip("w2"), ip("w3")], ["n2"]);
        const rs = await many("client", lab.node("n2").ip, nodePort(local), 30);
        allOk(rs, "ETP Local");
        assert.deepEqual(new Set(rs.map((r) => r.server)), new Set(["w2", "w3"]));
        assert.equal(traceSays("client", lab.node("n2").ip, nodePort(local)!), servers(rs));
        assert.ok(rs.every((r) => r.clientIp === client.ip), "client IP kept");
      });
      await t.step("hairpin: a pod reaches itself through its service", async () => {
        const hp = await svcOf("hp");
        await programmed(`tcp/${vip(hp)}:80`, [ip("h1")]);
        const r = await lab.tcpProbe("h1", vip(hp), 80, 1500);
        assert.equal(r.status, "connected");
        assert.equal(r.server, "h1");
        assert.equal(traceSays("h1", vip(hp), 80), "h1");
      });
      await t.step(
        "bad annotations are logged and fall back; no endpoints → rejected; the rest is served",
        async () => {
          const odd = await svcOf("odd");
          const empty = await svcOf("empty");
          await programmed(`tcp/${vip(odd)}:80`, [ip("w2")]);
          const rs = await many("cl1", vip(odd), 80, 5);
          allOk(rs, "odd service still served");
          assert.equal(traceSays("cl1", vip(odd), 80), servers(rs));
          assert.equal((await lab.tcpProbe("cl1", vip(empty), 80)).status, "refused");
          assert.equal(traceSays("cl1", vip(empty), 80), "rejected");
          const text = w.warnings.join("\n");
          assert.match(text, new RegExp(`${w.ns}/odd.*unknown scheduler \\\\"bogus\\\\"`));
          assert.match(text, new RegExp(`${w.ns}/odd.*unsupported DSR mode`));
          assert.match(text, new RegExp(`${w.ns}/empty.*no ready endpoints`));
        },
      );
      await t.step("scale endpoints up and down while a client loops: no failed request", async () => {
        let stop = false;
        const results: string[] = [];
        const loop = (async () => {
          while (!stop) {
            const r = await lab.tcpProbe("cl1", vip(web), 80, 1500);
            results.push(r.status === "connected" ? r.server! : `FAIL:${r.status}`);
          }
        })();
        const all = [{ pod: "w1", node: "n1" }, { pod: "w2", node: "n2" }, { pod: "w3", node: "n2" }] as Ep[];
        await w.endpoints("web", [all[0]]);
        await programmed(`tcp/${vip(web)}:80`, [ip("w1")]);
        await w.endpoints("web", all);
        await programmed(`tcp/${vip(web)}:80`, [ip("w1"), ip("w2"), ip("w3")]);
        // Scale down the way Kubernetes does: terminating first, then gone.
        await w.endpoints("web", [all[0], { ...all[1], ready: false, terminating: true }, {
          ...all[2],
          ready: false,
          terminating: true,
        }]);
        await programmed(`tcp/${vip(web)}:80`, [ip("w1")]);
        await w.endpoints("web", [all[0]]);
        await new Promise((r) => setTimeout(r, 300));
        await w.endpoints("web", all);
        await programmed(`tcp/${vip(web)}:80`, [ip("w1"), ip("w2"), ip("w3")]);
        await new Promise((r) => setTimeout(r, 300));
        stop = true;
        await loop;
        assert.ok(results.length >= 10, `only ${results.length} requests`);
        assert.deepEqual(results.filter((r) => r.startsWith("FAIL")), [], `${results.length} requests`);
      });
      await t.step("UDP endpoint replaced: the client on a fixed source port recovers", async () => {
        const dns = await svcOf("dns");
        await programmed(`udp/${vip(dns)}:53`, [ip("w1")]);
        const ask = async () =>
          (await lab.exec("cl1", [
            "sh",
            "-c",
            `echo q | timeout 2 socat -T1 - UDP:${vip(dns)}:53,sourceport=40053,reuseaddr`,
          ], { okCodes: [0, 1, 124] })).stdout.trim().split(/\s+/)[0];
        assert.equal(await ask(), "w1");
        assert.equal(traceSays("cl1", vip(dns), 53, { proto: "udp" }), "w1");
        await w.endpoints("dns", [{ pod: "w2", node: "n2" }], { port: 5353, protocol: "UDP" });
        await programmed(`udp/${vip(dns)}:53`, [ip("w2")]);
        assert.equal(await ask(), "w2");
        assert.equal(traceSays("cl1", vip(dns), 53, { proto: "udp" }), "w2");
      });
      await t.step("--masquerade-all: ClusterIP traffic is SNATed to the node", async () => {
        abort.abort();
        await ctrls.n2.stop();
        const masq = new ProxyController(ctxFor(w, "n2", { masqueradeAll: true }), { healthChecks: false });
        const abort2 = new AbortController();
        try {
          runController(masq, s, { signal: abort2.signal, minIntervalMs: 50 });
          await until("masquerade-all controller", () => masq.applied?.services.every((v) => v.masquerade));
          const rs = await many("cl2", vip(web), 80, 20);
          allOk(rs, "masquerade-all");
          const remote = rs.filter((r) => r.server === "w1");
          assert.ok(remote.length > 0);
          assert.equal(traceSays("cl2", vip(web), 80, { extra: { masqueradeAll: true } }), servers(rs));
          assert.ok(remote.every((r) => r.clientIp === lab.node("n2").ip), JSON.stringify(remote));
        } finally {
          abort2.abort();
          await masq.stop();
        }
      });
    } finally {
      abort.abort();
      for (const c of Object.values(ctrls)) await c.stop();
      await src?.close();
      for (const n of ["n1", "n2"] as const) await proxyCleanup(ctxFor(w, n));
      await api.kubectl(["delete", "namespace", w.ns, "--wait=false"], { okCodes: [0, 1] });
      for (const n of ["n1", "n2"]) await api.kubectl(["delete", "node", w.nodeName(n)], { okCodes: [0, 1] });
    }
  },
});

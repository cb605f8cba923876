/**
 * The Grafana dashboard (`manifests/grafana-dashboard.json`) against a running agent: every metric
 * a panel queries is one the agent exports (by its `# TYPE` line), every label a panel groups or
 * filters by is one that metric carries, and the dashboard covers every upstream metric.
 *
 * The agent is `main.ts run` on the example cluster (`--manifests`, playing node-1, nftables
 * service proxy) inside a fresh network namespace `krdash-<random>`, with the example's node
 * address 192.0.2.11/24 on a veth pair the test creates there; the namespace is removed after.
 */
import assert from "node:assert/strict";
import { CommandRunner } from "../../kernel/exec.ts";
import { REPO_ROOT as root, spawnAgent } from "../fixtures/agent.ts";
import { OUR_METRICS, UPSTREAM_METRICS } from "../../observe/upstream_metrics.ts";

const sh = new CommandRunner();

interface Target {
  expr: string;
}
interface Panel {
  title: string;
  targets?: Target[];
  panels?: Panel[];
}

function exprs(dash: { panels: Panel[]; templating: { list: Array<{ query?: unknown }> } }): string[] {
  const out: string[] = [];
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      for (const t of p.targets ?? []) out.push(t.expr);
      walk(p.panels ?? []);
    }
  };
  walk(dash.panels);
  for (const v of dash.templating.list) {
    if (typeof v.query === "string" && v.query.includes("(")) out.push(v.query);
  }
  return out;
}

/** Metric names an expression reads, with a histogram's `_bucket`/`_sum`/`_count` taken off. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\bkube_router_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ""));
}

/** Labels an expression relies on: `by (...)`, `{label=...}` matchers and `{{label}}` is checked elsewhere. */
function labelsUsed(expr: string): Array<{ metric: string; label: string }> {
  const out: Array<{ metric: string; label: string }> = [];
  for (const m of expr.matchAll(/\b(kube_router_[a-z0-9_]+)\{([^}]*)\}/g)) {
    for (const l of m[2].matchAll(/([a-z_]+)\s*(=~|!=|=|!~)/g)) out.push({ metric: m[1], label: l[1] });
  }
  for (const m of expr.matchAll(/by \(([^)]*)\)[^]*?\b(kube_router_[a-z0-9_]+)/g)) {
    for (const l of m[1].split(",")) out.push({ metric: m[2], label: l.trim() });
  }
  return out;
}

Deno.test("dashboard: every query names a metric the running agent exports, with the labels it has", async () => {
  const dash = JSON.parse(await Deno.readTextFile(`${root}manifests/grafana-dashboard.json`));
  const all = exprs(dash);
  assert.ok(all.length > 20, "the dashboard has queries");

  const ns = `krdash-${crypto.randomUUID().slice(0, 8)}`;
  // The router writes its CNI file on the (shared) filesystem: point it at a scratch directory.
  const cniDir = await Deno.makeTempDir({ prefix: "krdash-cni-" });
  await sh.run(["ip", "netns", "add", ns]);
  let child: Deno.ChildProcess | undefined;
  try {
    await sh.run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    await sh.run(["ip", "-n", ns, "link", "add", "krd0", "type", "veth", "peer", "name", "krd1"]);
    await sh.run(["ip", "-n", ns, "addr", "add", "192.0.2.11/24", "dev", "krd0"]);
    await sh.run(["ip", "-n", ns, "link", "set", "krd0", "up"]);
    await sh.run(["ip", "-n", ns, "link", "set", "krd1", "up"]);
    const port = 20000 + Math.floor(Math.random() * 20000);
    child = spawnAgent(
      [
        "run",
        "--manifests",
        `${root}manifests/examples/cluster.yaml`,
        "--hostname-override",
        "node-1",
        "--service-proxy-mode=nftables",
        "--health-port=0",
        `--metrics-port=${port}`,
        "--gobgp-admin-port=0",
      ],
      { netns: ns, stdout: "null", env: { KUBE_ROUTER_CNI_CONF_FILE: `${cniDir}/10-kuberouter.conf` } },
    );
    // Wait until every controller has synced once.
    let text = "";
    const synced = [
      /^kube_router_controller_policy_chains [1-9]/m,
      /^kube_router_controller_ipvs_services [1-9]/m,
      /^kube_router_controller_routes_sync_time_count [1-9]/m,
      /^kube_router_controller_bgp_peers [1-9]/m,
    ];
    for (let i = 0; i < 300 && !synced.every((r) => r.test(text)); i++) {
      await new Promise((r) => setTimeout(r, 100));
      text =
        (await sh.run(["curl", "-s", `http://127.0.0.1:${port}/metrics`], { netns: ns, okCodes: [0, 7] }))
          .stdout;
    }
    for (const r of synced) assert.match(text, r, "the agent did not sync every controller");

    const exported = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
    const specs = new Map([...UPSTREAM_METRICS, ...OUR_METRICS].map((s) => [s.name, s]));
    const used = new Set<string>();
    for (const e of all) {
      for (const name of metricNames(e)) {
        assert.ok(exported.has(name), `dashboard query ${e} reads ${name}, which the agent does not export`);
        used.add(name);
      }
      for (const { metric, label } of labelsUsed(e)) {
        if (label === "instance" || label === "le" || label === "job") continue; // added by Prometheus / histograms
        assert.ok(specs.get(metric)?.labels.includes(label), `${e}: ${metric} has no label ${label}`);
      }
    }
    for (const spec of UPSTREAM_METRICS) assert.ok(used.has(spec.name), `no panel shows ${spec.name}`);
    for (const spec of [...UPSTREAM_METRICS, ...OUR_METRICS]) {
      assert.equal(exported.get(spec.name), spec.type, `${spec.name} is exported as ${spec.type}`);
    }
    // The example's shop/dns and shop/frontend carry addresses outside the allowed ranges: the proxy
    // skips those fields, and says so in the metric as well as the log.
    assert.match(text, /^kube_router_objects_skipped_total\{kind="Service",reason="invalid-field"\} [1-9]/m);
  } finally {
    if (child) {
      child.kill("SIGTERM");
      await child.output();
    }
    await sh.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
    await Deno.remove(cniDir, { recursive: true });
  }
});

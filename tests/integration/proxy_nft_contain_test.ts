/**
 * The proxy's nftables mode contains a refused transaction: when nft refuses the batch because of
 * one Service, that Service is left out (keeping what the kernel last had for it), every other
 * Service's update is applied in the same sync, and the refusal is logged, counted and put in the
 * health detail. Before containment the whole sync failed and no Service was updated.
 *
 * The refusal is the kernel's own: the test's runner puts an element under the bad Service's
 * endpoints-map key, with another value, into the same transaction just before the agent's line
 * that carries the bad Service's new endpoint, so the kernel answers "File exists" at that
 * element (as for an element it already holds from elsewhere). Namespace `fwpnc…` of its own,
 * no traffic (addresses 10.96.0.0/16, 10.201.0.0/24 and 192.0.2.10 appear in rules only).
 */
import assert from "node:assert/strict";
import type { ExecOptions, ExecResult, Runner } from "../../kernel/exec.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { NftApplier } from "../../controllers/proxy/nft_apply.ts";
import { applyContained, type RefusedService } from "../../controllers/proxy/nft_contain.ts";
import { plan } from "../../controllers/proxy/plan.ts";
import type { ProxyPlan } from "../../controllers/proxy/types.ts";
import { ep, nodeA, proxyOptions, slice, snapshot, svc } from "../../controllers/proxy/testing.ts";
import { createNetns } from "./firewall_netns_helper.ts";

/** Refuses, through the kernel, any transaction that gives the bad Service endpoint `poison`. */
class PoisoningRunner implements Runner {
  constructor(
    private readonly inner: Runner,
    private readonly poison: string,
    private readonly key: string,
  ) {}
  run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    if (argv.join(" ") !== "nft -f -" || !options.stdin?.includes(this.poison)) {
      return this.inner.run(argv, options);
    }
    const lines = options.stdin.split("\n");
    const at = lines.findIndex((l) =>
      l.startsWith("add element ip kube-router-proxy endpoints") && l.includes(this.poison)
    );
    lines.splice(at, 0, `add element ip kube-router-proxy endpoints { ${this.key} : 10.201.0.99 . 8080 }`);
    return this.inner.run(argv, { ...options, stdin: lines.join("\n") });
  }
}

function cluster(goodEp: string, badEp: string): ProxyPlan {
  return plan(
    snapshot({
      services: [
        svc("good", { clusterIPs: ["10.96.0.10"], ports: [{ port: 80 }] }),
        svc("bad", { clusterIPs: ["10.96.0.20"], ports: [{ port: 80 }] }),
      ],
      slices: [slice("good", [ep(goodEp)]), slice("bad", [ep(badEp)])],
    }),
    proxyOptions(),
    nodeA(),
  );
}

Deno.test("proxy nftables: a Service nft refuses is left out as it was; every other Service is updated", async () => {
  const netns = await createNetns("pnc");
  try {
    const runner = new PoisoningRunner(netns.runner, "10.201.0.8 . 8080", "10.96.0.20 . tcp . 80 . 0");
    const applier = new NftApplier(runner, [4]);
    const refused = new Map<string, RefusedService>();
    const errors: string[] = [];
    let health: string[] = [];
    const metrics = new MetricsRegistry();
    const ctx = (now: number) => ({
      now,
      retryAfterMs: 300_000,
      log: {
        error: (m: string, p?: Record<string, unknown>) =>
          errors.push(m.replace(/\{(\w+)\}/g, (_, k) => String(p?.[k]))),
      },
      metrics,
      healthNote: (l: string[]) => health = l,
    });
    const endpoints = () => netns.sh("nft list map ip kube-router-proxy endpoints");

    const first = await applyContained(
      applier,
      cluster("10.201.0.5", "10.201.0.7"),
      undefined,
      refused,
      ctx(0),
    );
    assert.equal(refused.size, 0);
    assert.match(await endpoints(), /10\.96\.0\.20 \. tcp \. 80 \. 0 : 10\.201\.0\.7 \. 8080/);

    // Both Services change; the kernel refuses the bad one's new endpoint.
    const second = await applyContained(
      applier,
      cluster("10.201.0.6", "10.201.0.8"),
      first.applied,
      refused,
      ctx(1),
    );
    assert.deepEqual([...refused.keys()], ["default/bad"]);
    let held = await endpoints();
    assert.match(
      held,
      /10\.96\.0\.10 \. tcp \. 80 \. 0 : 10\.201\.0\.6 \. 8080/,
      "the good Service is updated",
    );
    assert.match(
      held,
      /10\.96\.0\.20 \. tcp \. 80 \. 0 : 10\.201\.0\.7 \. 8080/,
      "the bad one keeps its last state",
    );
    assert.doesNotMatch(held, /10\.201\.0\.(8|99)/);
    assert.equal(errors.length, 1);
    assert.match(
      errors[0],
      /^Service default\/bad left out of the nftables proxy: nft refused its rules \(.*File exists/,
    );
    assert.equal(metrics.counter("kube_router_proxy_objects_refused_total", "").get({ kind: "Service" }), 1);
    assert.match(health[0], /^proxy: Service default\/bad left out \(nft refused it\)/);

    // The next sync with the same objects leaves it out again without another refusal.
    const third = await applyContained(
      applier,
      cluster("10.201.0.6", "10.201.0.8"),
      second.applied,
      refused,
      ctx(2),
    );
    assert.equal(third.result.script, "", "nothing to do");
    assert.equal(errors.length, 1);

    // Once the bad Service changes, it is applied in full and the report is cleared.
    await applyContained(applier, cluster("10.201.0.6", "10.201.0.9"), third.applied, refused, ctx(3));
    assert.equal(refused.size, 0);
    assert.deepEqual(health, []);
    held = await endpoints();
    assert.match(held, /10\.96\.0\.20 \. tcp \. 80 \. 0 : 10\.201\.0\.9 \. 8080/);
    assert.match(held, /10\.96\.0\.10 \. tcp \. 80 \. 0 : 10\.201\.0\.6 \. 8080/);
  } finally {
    await netns.dispose();
  }
});

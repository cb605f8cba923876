import assert from "node:assert/strict";
import type { Logger } from "../observe/log.ts";
import { MetricsRegistry } from "../observe/metrics.ts";
import { defaultOptions } from "../options/mod.ts";
import type { ControllerContext } from "./controller.ts";
import { RefusedObjects } from "./refused.ts";

Deno.test("refused objects: reported once, retried when the object changes or at the resync", () => {
  const errors: string[] = [];
  let notes: string[] = [];
  const ctx = {
    options: defaultOptions(),
    log: { error: (m: string) => errors.push(m) } as unknown as Logger,
    metrics: new MetricsRegistry(),
    healthNote: (l: string[]) => notes = l,
  } as unknown as ControllerContext;
  const r = new RefusedObjects(ctx, "proxy", "left out");
  const v1 = {}, v2 = {};
  let current: unknown = v1;
  const refused = [{ object: "Service a/b", field: "spec.clusterIP", value: "10.0.0.1", reason: "no" }];
  assert.equal(r.add(refused, () => current, 1000), true);
  assert.equal(r.add(refused, () => current, 1001), false, "nothing new: the caller must not loop");
  assert.equal(errors.length, 1);
  assert.equal(
    ctx.metrics.counter("kube_router_proxy_objects_refused_total", "").get({ kind: "Service" }),
    1,
  );
  r.publish();
  assert.equal(notes.length, 1);
  r.prune(() => current, 2000, 60_000);
  assert.ok(r.has("Service a/b"), "unchanged: still left out");
  current = v2;
  r.prune(() => current, 2000, 60_000);
  assert.ok(!r.has("Service a/b"), "changed: retried");
  r.add(refused, () => current, 3000);
  r.prune(() => current, 63_000, 60_000);
  assert.ok(!r.has("Service a/b"), "at the periodic resync: retried");
  r.publish();
  assert.deepEqual(notes, []);
});

import assert from "node:assert/strict";
import { SnapshotStore } from "./store.ts";
import type { NamespaceInfo } from "./types.ts";

const ns = (name: string, labels: Record<string, string> = {}): NamespaceInfo => ({ name, labels });

Deno.test("store: a relist with one real change keeps every unchanged object (same identity)", () => {
  const store = new SnapshotStore();
  store.replaceAll("Namespace", new Map(["a", "b", "c"].map((n) => [n, ns(n)])));
  store.markSynced();
  store.flush();
  const before = store.current().namespaces;
  // The relist delivers fresh copies of every object; only "b" really changed.
  store.replaceAll(
    "Namespace",
    new Map([["a", ns("a")], ["b", ns("b", { team: "x" })], ["c", ns("c")]]),
  );
  store.flush();
  const after = store.current().namespaces;
  assert.notEqual(after, before);
  assert.equal(after.get("a"), before.get("a"));
  assert.equal(after.get("c"), before.get("c"));
  assert.notEqual(after.get("b"), before.get("b"));
  assert.deepEqual(after.get("b")!.labels, { team: "x" });
  // An unchanged re-delivery among changes (watch events) keeps its object too.
  store.upsert("Namespace", "a", ns("a"));
  store.upsert("Namespace", "d", ns("d"));
  store.flush();
  assert.equal(store.current().namespaces.get("a"), before.get("a"));
  assert.equal(store.current().namespaces.size, 4);
});

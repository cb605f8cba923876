// The proxy's nftables applier over kernel/nft's in-memory nft, as a kernel before 6.2 (chains
// a deleted map element pointed at are freed only after the transaction): removing a ClientIP
// affinity Service (its `svc-…` chain is a `service-ips` verdict) must not fail the batch; the
// chain is flushed at once and deleted by a later transaction. Also: an incremental history
// ends in the same kernel state as a fresh apply of the last plan.
import assert from "node:assert/strict";
import { FakeNft } from "../../kernel/nft/fake.ts";
import { NftApplier } from "./nft_apply.ts";
import { plan } from "./plan.ts";
import { ep, nodeA, proxyOptions, slice, snapshot, svc } from "./testing.ts";

function cluster(withSticky: boolean, webEps = ["10.201.0.5"]) {
  const services = [svc("web", { clusterIPs: ["10.96.0.10"] })];
  const slices = [slice("web", webEps.map((ip) => ep(ip)))];
  if (withSticky) {
    services.push(
      svc("sticky", { clusterIPs: ["10.96.0.11"], sessionAffinity: "ClientIP", sessionAffinityTimeout: 60 }),
    );
    slices.push(slice("sticky", [ep("10.201.0.6"), ep("10.201.0.7")]));
  }
  return plan(snapshot({ services, slices }), proxyOptions(), nodeA());
}

Deno.test("proxy nft: an affinity Service's chains go one transaction after its map element (kernels < 6.2)", async () => {
  const fake = new FakeNft();
  fake.lateChainRelease = true;
  let clock = 0;
  const applier = new NftApplier(fake, [4], { now: () => clock });
  assert.equal((await applier.apply(cluster(true))).full, true);
  const chains = () =>
    [...fake.tables.get("ip kube-router-proxy")!.chains.keys()].filter((c) => /^(svc|ep)-/.test(c));
  assert.equal(chains().length, 3, "svc- and two ep- chains");

  clock = 100;
  const r = await applier.apply(cluster(false));
  assert.equal(r.full, false);
  assert.doesNotMatch(r.script, /delete chain/);
  assert.equal(chains().length, 3, "flushed, not deleted yet");
  assert.deepEqual([...applier.staleChains(4)].sort(), chains().sort());

  clock = 2000;
  const later = await applier.apply(cluster(false, ["10.201.0.8"]));
  assert.match(later.script, /delete chain ip kube-router-proxy svc-/);
  assert.equal(chains().length, 0);
  assert.equal(applier.staleChains(4).size, 0);

  // The same end state as a fresh apply of the last plan.
  const fresh = new FakeNft();
  await new NftApplier(fresh, [4]).apply(cluster(false, ["10.201.0.8"]));
  assert.equal(fake.dump(), fresh.dump());
});

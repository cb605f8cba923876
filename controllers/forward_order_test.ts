import assert from "node:assert/strict";
import { acceptJumpPlaced, acceptJumpPosition, POLICY_FORWARD_CHAIN } from "./forward_order.ts";

const ACCEPT = "KUBE-ROUTER-PODNET-FWD";
const j = (chain: string) => ["-m", "comment", "--comment", "x", "-j", chain];

Deno.test("forward order: the ACCEPT jump must follow every policy hook, once", () => {
  assert.equal(acceptJumpPlaced([j(POLICY_FORWARD_CHAIN), j(ACCEPT)], ACCEPT), true);
  assert.equal(acceptJumpPlaced([j(ACCEPT), j(POLICY_FORWARD_CHAIN)], ACCEPT), false);
  assert.equal(acceptJumpPlaced([j(POLICY_FORWARD_CHAIN), j(ACCEPT), j(ACCEPT)], ACCEPT), false);
  assert.equal(acceptJumpPlaced([j(POLICY_FORWARD_CHAIN)], ACCEPT), false);
  // Without the firewall any single jump will do, wherever other agents put theirs.
  assert.equal(acceptJumpPlaced([j("DOCKER-USER"), j(ACCEPT)], ACCEPT), true);
  assert.equal(acceptJumpPlaced([j(ACCEPT)], ACCEPT), true);
});

Deno.test("forward order: insert position is right after the last policy hook, else the top", () => {
  assert.equal(acceptJumpPosition([], ACCEPT), 1);
  assert.equal(acceptJumpPosition([j("DOCKER-USER")], ACCEPT), 1);
  assert.equal(acceptJumpPosition([j(POLICY_FORWARD_CHAIN), j("DOCKER-USER")], ACCEPT), 2);
  // Our own stale jumps are deleted first, so they do not count.
  assert.equal(acceptJumpPosition([j(ACCEPT), j(POLICY_FORWARD_CHAIN)], ACCEPT), 2);
  assert.equal(acceptJumpPosition([j("A"), j(POLICY_FORWARD_CHAIN), j("B")], ACCEPT), 3);
});

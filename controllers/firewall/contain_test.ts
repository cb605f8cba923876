/**
 * Tracing a refused line back to its object, for each tool the firewall feeds.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ExecError } from "../../kernel/exec.ts";
import { namesInLine, refusedObject } from "./contain.ts";
import type { FirewallPlan } from "./plan.ts";

const plan = {
  owners: new Map([
    ["KUBE-POD-FW-JOWEQ7ALRDMXMHTB", "Pod shop/cart-1"],
    ["KUBE-SRC-ZXD4LDAZXFJ73QQX", "NetworkPolicy shop/allow-frontend"],
  ]),
} as unknown as FirewallPlan;

Deno.test("contain: names in iptables, ipset and nft lines", () => {
  const ipt = namesInLine("-A KUBE-ROUTER-FORWARD -d 10.244.1.11 -j KUBE-POD-FW-JOWEQ7ALRDMXMHTB");
  assert.ok(ipt.includes("KUBE-ROUTER-FORWARD") && ipt.includes("KUBE-POD-FW-JOWEQ7ALRDMXMHTB"), String(ipt));
  assert.ok(namesInLine("add KUBE-SRC-ZXD4LDAZXFJ73QQX 10.244.1.10").includes("KUBE-SRC-ZXD4LDAZXFJ73QQX"));
  assert.deepEqual(
    namesInLine(
      'add rule ip kube-router-filter-ipv4 KUBE-ROUTER-FORWARD ip daddr 10.244.1.11 jump KUBE-POD-FW-JOWEQ7ALRDMXMHTB comment "x"',
    ),
    ["KUBE-ROUTER-FORWARD", "KUBE-POD-FW-JOWEQ7ALRDMXMHTB"],
  );
  assert.deepEqual(
    namesInLine("add element ip kube-router-filter-ipv4 KUBE-SRC-ZXD4LDAZXFJ73QQX { 10.244.1.10 }"),
    ["KUBE-SRC-ZXD4LDAZXFJ73QQX"],
  );
  assert.deepEqual(
    namesInLine(
      "add rule ip kube-router-filter-ipv4 KUBE-NWPLCY-X ip saddr @KUBE-SRC-ZXD4LDAZXFJ73QQX accept",
    ),
    ["KUBE-NWPLCY-X", "KUBE-SRC-ZXD4LDAZXFJ73QQX"],
  );
});

Deno.test("contain: an nft refusal (nftables backend) is traced to its object", () => {
  const stdin = [
    "add table ip kube-router-filter-ipv4",
    "add element ip kube-router-filter-ipv4 KUBE-SRC-ZXD4LDAZXFJ73QQX { 10.244.1.10 }",
    "",
  ].join("\n");
  const stderr = "/dev/stdin:2:72-82: Error: Could not process rule: File exists\n" +
    "add element ip kube-router-filter-ipv4 KUBE-SRC-ZXD4LDAZXFJ73QQX { 10.244.1.10 }\n";
  const err = new ExecError(["nft", "-f", "-"], 1, stderr, stdin);
  assert.equal(refusedObject(err, plan), "NetworkPolicy shop/allow-frontend");
});

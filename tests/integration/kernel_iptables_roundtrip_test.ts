/**
 * kernel/iptables against the real tools, inside a namespace `fw…` this test creates.
 * Addresses: 10.201.0.0/16, 192.0.2.0/24 and 2001:db8::/32 appear in rules only; no traffic.
 */
import assert from "node:assert/strict";
import { ExecError } from "../../kernel/exec.ts";
import {
  type IpFamily,
  type IptablesBackend,
  listChain,
  parseSave,
  renderNoflush,
  renderRestore,
  restoreFull,
  restoreNoflush,
  saveText,
} from "../../kernel/iptables/mod.ts";
import { createNetns } from "./firewall_netns_helper.ts";

function fixture(family: IpFamily): string {
  const a = family === "ipv4" ? "10.201.0.1" : "2001:db8::1";
  const net = family === "ipv4" ? "192.0.2.0/24" : "2001:db8:1::/48";
  const icmp = family === "ipv4"
    ? "-p icmp -m icmp --icmp-type 8"
    : "-p ipv6-icmp -m icmp6 --icmpv6-type 128";
  return `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:FOREIGN - [0:0]
:MINE - [0:0]
-A INPUT -m comment --comment "jump to mine" -j MINE
-A FORWARD -s ${net} -j FOREIGN
-A FOREIGN -d ${a}/${
    family === "ipv4" ? 32 : 128
  } -p tcp -m tcp --dport 80 -m comment --comment "say \\"hi\\" there" -j ACCEPT
-A MINE -m mark ! --mark 0x10000/0x10000 -m limit --limit 10/min --limit-burst 10 -j NFLOG --nflog-group 100
-A MINE -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A MINE ${icmp} -j ACCEPT
-A MINE -p udp -m addrtype --dst-type LOCAL -m multiport --dports 30000:32767 -j RETURN
-A MINE -j MARK --set-xmark 0x20000/0x20000
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s ${net} -j MASQUERADE
COMMIT
`;
}

const cases: Array<[IpFamily, IptablesBackend]> = [
  ["ipv4", "nft"],
  ["ipv6", "nft"],
  ["ipv4", "legacy"],
  ["ipv6", "legacy"],
];

for (const [family, backend] of cases) {
  Deno.test(`iptables-save of a real namespace round-trips through parse/render (${family}, ${backend})`, async () => {
    const ns = await createNetns("ipt");
    const tool = { family, backend };
    try {
      await restoreFull(ns.runner, tool, fixture(family));
      const saved = await saveText(ns.runner, tool);
      const parsed = parseSave(saved);
      assert.deepEqual(parsed.map((t) => t.name).sort(), ["filter", "nat"]);
      const rendered = renderRestore(parsed);
      // Restoring our rendering and saving again gives the same dump.
      await restoreFull(ns.runner, tool, rendered);
      const again = parseSave(await saveText(ns.runner, tool));
      const norm = (ts: typeof parsed) =>
        ts.map((t) => ({ ...t, chains: t.chains.map((c) => ({ ...c, packets: 0, bytes: 0 })) }))
          .sort((x, y) => x.name.localeCompare(y.name));
      assert.deepEqual(norm(again), norm(parsed));
      const filter = parsed.find((t) => t.name === "filter")!;
      const comment = filter.rules.find((r) => r.chain === "FOREIGN")!.args;
      assert.ok(comment.includes('say "hi" there'), JSON.stringify(comment));
    } finally {
      await ns.dispose();
    }
  });

  Deno.test(`--noflush transaction touches only named chains and fails atomically (${family}, ${backend})`, async () => {
    const ns = await createNetns("ipt");
    const tool = { family, backend };
    try {
      await restoreFull(ns.runner, tool, fixture(family));
      const before = parseSave(await saveText(ns.runner, tool, "filter"))[0];
      // Replace MINE, create NEWC, jump to it from INPUT at position 1.
      await restoreNoflush(
        ns.runner,
        tool,
        renderNoflush({
          table: "filter",
          replaceChains: new Map([["MINE", [["-j", "NEWC"]]], ["NEWC", [["-j", "RETURN"]]]]),
          edits: [["-I", "INPUT", "1", "-j", "NEWC"]],
        }),
      );
      const mid = parseSave(await saveText(ns.runner, tool, "filter"))[0];
      assert.deepEqual(
        mid.rules.filter((r) => r.chain === "FOREIGN" || r.chain === "FORWARD"),
        before.rules.filter((r) => r.chain === "FOREIGN" || r.chain === "FORWARD"),
      );
      assert.deepEqual((await listChain(ns.runner, tool, "filter", "MINE"))!.map((r) => r.args), [[
        "-j",
        "NEWC",
      ]]);
      assert.deepEqual((await listChain(ns.runner, tool, "filter", "INPUT"))![0].args, ["-j", "NEWC"]);
      assert.equal(await listChain(ns.runner, tool, "filter", "NOPE"), undefined);

      // A transaction with a bad line changes nothing, and the error names the line.
      const bad = renderNoflush({
        table: "filter",
        replaceChains: new Map([["MINE", [["-j", "ACCEPT"], [
          "-p",
          "tcp",
          "--dport",
          "notaport",
          "-j",
          "ACCEPT",
        ]]]]),
        deleteChains: ["NEWC"],
      });
      await assert.rejects(restoreNoflush(ns.runner, tool, bad), (e: unknown) => {
        assert.ok(e instanceof ExecError);
        assert.match(e.offendingLine?.text ?? "", /notaport/);
        return true;
      });
      const after = parseSave(await saveText(ns.runner, tool, "filter"))[0];
      assert.deepEqual(after.rules, mid.rules);

      // Delete: unreference first (rewrite MINE, drop the INPUT jump), then -X in the same transaction.
      await restoreNoflush(
        ns.runner,
        tool,
        renderNoflush({
          table: "filter",
          replaceChains: new Map([["MINE", [["-j", "RETURN"]]]]),
          edits: [["-D", "INPUT", "-j", "NEWC"]],
          deleteChains: ["NEWC"],
        }),
      );
      const end = parseSave(await saveText(ns.runner, tool, "filter"))[0];
      assert.ok(!end.chains.some((c) => c.name === "NEWC"));
      assert.ok(end.chains.some((c) => c.name === "FOREIGN"));
    } finally {
      await ns.dispose();
    }
  });
}

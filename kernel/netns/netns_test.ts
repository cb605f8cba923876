// Unit tests for /proc-based namespace discovery: parsers on text in the kernel's formats (the
// fib_trie sample is this machine's own /proc/self/net/fib_trie shape), and the scan over a fake
// /proc. The real /proc is exercised by tests/integration/proxy_dsr_netns_test.ts.
// Addresses: 10.220.0.0/16, 192.0.2.0/24, 2001:db8::/32.
import assert from "node:assert/strict";
import { NetnsIndex, parseFibTrieLocal, parseIfInet6, type ProcFs, scanNetns } from "./mod.ts";

const FIB = `Main:
  +-- 0.0.0.0/0 3 0 5
     +-- 10.220.1.0/24 2 0 2
        |-- 10.220.1.0
           /24 link UNICAST
        |-- 10.220.1.7
           /32 host LOCAL
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 10.220.1.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
        |-- 10.220.1.7
           /32 host LOCAL
`;

Deno.test("parseFibTrieLocal: local /32 host entries, no loopback, no broadcast", () => {
  assert.deepEqual(parseFibTrieLocal(FIB), ["10.220.1.7"]);
  assert.deepEqual(parseFibTrieLocal(""), []);
});

Deno.test("parseIfInet6: hex addresses in RFC 5952 form, lo skipped", () => {
  const text = [
    "00000000000000000000000000000001 01 80 10 80       lo",
    "20010db8000000000000000000000007 04 40 00 80     eth0",
    "fe800000000000000001020304050607 04 40 20 80     eth0",
    "20010db8000100020003000400050006 05 40 00 80     eth1",
  ].join("\n");
  assert.deepEqual(parseIfInet6(text), ["2001:db8:1:2:3:4:5:6", "2001:db8::7", "fe80::1:203:405:607"]);
});

function fakeProc(procs: Record<string, { ns: string; fib?: string; v6?: string }>): ProcFs {
  return {
    pids: () => Promise.resolve(Object.keys(procs)),
    readLink: (p) => Promise.resolve(procs[p.split("/")[2]]?.ns),
    readText: (p) => {
      const e = procs[p.split("/")[2]];
      return Promise.resolve(p.endsWith("fib_trie") ? e?.fib : e?.v6);
    },
  };
}

Deno.test("scanNetns: one entry per namespace (lowest pid), lookup unique / absent / ambiguous", async () => {
  const pod = (ip: string) => `     |-- ${ip}\n        /32 host LOCAL\n`;
  const procs = fakeProc({
    "1": { ns: "net:[1]", fib: pod("192.0.2.1") },
    "40": { ns: "net:[2]", fib: pod("10.220.1.7"), v6: "20010db8000000000000000000000007 04 40 00 80 eth0" },
    "30": { ns: "net:[2]", fib: pod("10.220.1.7") },
    "50": { ns: "net:[3]", fib: pod("10.220.9.9") },
    "51": { ns: "net:[4]", fib: pod("10.220.9.9") },
    "60": { ns: "net:[5]" }, // exited between readlink and read
  });
  const entries = await scanNetns(procs, new Set(["net:[1]"]));
  assert.deepEqual(entries.map((e) => [e.id, e.pid, e.path]), [
    ["net:[2]", 30, "/proc/30/ns/net"],
    ["net:[3]", 50, "/proc/50/ns/net"],
    ["net:[4]", 51, "/proc/51/ns/net"],
  ]);
  const idx = new NetnsIndex(entries);
  assert.equal(idx.lookup("10.220.1.7").found?.pid, 30);
  assert.equal(idx.lookup("192.0.2.1").found, undefined, "skipped namespace");
  const amb = idx.lookup("10.220.9.9");
  assert.equal(amb.found, undefined);
  assert.equal(!amb.found && amb.reason, "ambiguous");
});

Deno.test("scanNetns on the real /proc finds this process's namespace", async () => {
  const self = await Deno.readLink("/proc/self/ns/net");
  const entries = await scanNetns();
  assert.ok(entries.some((e) => e.id === self), `${self} among ${entries.length} namespaces`);
});

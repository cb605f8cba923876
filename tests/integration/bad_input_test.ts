/**
 * The data side's bad-input suite (issue 9): every case of bad_input_cases.ts is fed to the real
 * agent (`main.ts run`, proxy in nftables mode + firewall) inside a throwaway network namespace,
 * all cases at once (one manifests file each), and each case is then checked on its own: the
 * agent logged its line, and the kernel holds the rest of that case (its witness Service and
 * endpoints, its pod's isolation) and not the bad value. Start-up failures (a file with no valid
 * object, a FIFO) are one agent run each: exit status 2, the message, and an untouched kernel.
 *
 * The objects the real API server accepts are fed once more through it (kubectl apply, the
 * kubelet's status written by the fixture), to a second agent reading the API; the cases it
 * refuses are listed in the output (the server's own validation is the first edge).
 *
 * Needs root (network namespaces). Addresses: see bad_input_cases.ts.
 */
import assert from "node:assert/strict";
import { CommandRunner } from "../../kernel/exec.ts";
import { spawnAgent } from "../fixtures/agent.ts";
import {
  type BadCase,
  baseText,
  buildCases,
  buildDocumentCases,
  FATAL_FILES,
  NODE,
} from "./bad_input_cases.ts";

const sh = new CommandRunner();

async function withNetns<T>(fn: (ns: string) => Promise<T>): Promise<T> {
  const ns = `krbad-${crypto.randomUUID().slice(0, 8)}`;
  await sh.run(["ip", "netns", "add", ns]);
  try {
    await sh.run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    return await fn(ns);
  } finally {
    await sh.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
  }
}

/** Everything the agent may have programmed: nftables (proxy), iptables (firewall), ipsets. */
async function kernelDump(ns: string): Promise<string> {
  const nft = (await sh.run(["nft", "list", "ruleset"], { netns: ns, okCodes: [0, 1] })).stdout;
  const ipt = (await sh.run(["iptables-save"], { netns: ns, okCodes: [0, 1] })).stdout;
  const sets = (await sh.run(["ipset", "save"], { netns: ns, okCodes: [0, 1] })).stdout;
  return `${nft}\n${ipt}\n${sets}`;
}

const agentFlags = (node: string) => [
  "--hostname-override",
  node,
  "--run-router=false",
  "--run-service-proxy=true",
  "--run-firewall=true",
  "--service-proxy-mode=nftables",
  "--service-external-ip-range=198.18.0.0/16",
  "--loadbalancer-ip-range=198.19.0.0/16",
  "--health-port=0",
  "--iptables-sync-period=1m",
];

/** Runs the agent until every `present` string is in the kernel (or `ms` passed); returns its log and the dump. */
async function runAgent(ns: string, args: string[], present: string[], ms = 90_000, node = NODE) {
  const child = spawnAgent(["run", ...args, ...agentFlags(node)], { netns: ns });
  const stderr = new Response(child.stderr).text();
  const stdout = new Response(child.stdout).text();
  let dump = "";
  const deadline = Date.now() + ms;
  let exited = false;
  child.status.then(() => exited = true);
  while (Date.now() < deadline && !exited) {
    dump = await kernelDump(ns);
    if (present.every((p) => dump.includes(p))) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  // One more period for late lines (logs of later syncs), then the final state.
  await new Promise((r) => setTimeout(r, 1000));
  dump = await kernelDump(ns);
  if (!exited) child.kill("SIGTERM");
  const status = await child.status;
  return { log: `${await stderr}\n${await stdout}`, dump, code: status.code };
}

function checkCase(c: BadCase, log: string, dump: string): string[] {
  const errors: string[] = [];
  if (!c.log.test(log)) errors.push(`no log line matching ${c.log}`);
  for (const p of c.present) if (!dump.includes(p)) errors.push(`kernel lacks ${JSON.stringify(p)}`);
  for (const a of c.absent) if (dump.includes(a)) errors.push(`kernel holds ${JSON.stringify(a)}`);
  return errors;
}

const objectCases = buildCases();
const documentCases = buildDocumentCases(objectCases.length + 1000);
const allCases = [...objectCases, ...documentCases];

Deno.test({
  name: `bad input: ${allCases.length} bad objects, documents and annotations in one agent run (--manifests)`,
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "kr-bad-input-" });
  try {
    await Deno.writeTextFile(`${dir}/00-base.json`, baseText());
    for (const c of allCases) await Deno.writeTextFile(`${dir}/${c.id.split(" ")[0]}.json`, c.text);
    const present = allCases.flatMap((c) => c.present);
    await withNetns(async (ns) => {
      const { log, dump, code } = await runAgent(ns, ["--manifests", dir], present);
      assert.ok(code === 0 || code === 143 || code === null, `agent exited ${code}:\n${log.slice(-3000)}`);
      assert.match(dump, /KUBE-ROUTER-FORWARD/, "the firewall never programmed its chains");
      assert.match(dump, /table ip kube-router-proxy/, "the proxy never programmed its table");
      assert.doesNotMatch(log, /apply failed|sync failed|Uncaught|TypeError/, "a controller failed");
      assert.doesNotMatch(
        log,
        /undefined is not|null is not/,
        "a problem reported for a field that was absent",
      );
      const failed: string[] = [];
      for (const c of allCases) {
        const errors = checkCase(c, log, dump);
        await t.step({
          name: c.id,
          fn: () => assert.deepEqual(errors, [], `${c.id}:\n  ${errors.join("\n  ")}`),
        });
        if (errors.length) failed.push(`${c.id}: ${errors.join("; ")}`);
      }
      if (failed.length) {
        await Deno.writeTextFile("/tmp/kr-bad-input-last.log", `${log}\n\n=== kernel\n${dump}`);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    `bad input: ${FATAL_FILES.length} manifests that stop the agent at start-up (exit 2, kernel untouched)`,
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  for (const [what, content, re] of FATAL_FILES) {
    await t.step(what, async () => {
      const dir = await Deno.makeTempDir({ prefix: "kr-bad-fatal-" });
      try {
        await Deno.writeTextFile(`${dir}/good.json`, baseText());
        let path = dir;
        if (content === "fifo") await sh.run(["mkfifo", `${dir}/bad.yaml`]);
        else if (content === "dir-fifo") {
          await sh.run(["mkfifo", `${dir}/bad.yaml`]);
          path = `${dir}/bad.yaml`;
        } else await Deno.writeTextFile(`${dir}/bad.yaml`, content);
        await withNetns(async (ns) => {
          const before = await kernelDump(ns);
          const started = Date.now();
          const { log, dump, code } = await runAgent(ns, ["--manifests", path], ["never"], 20_000);
          assert.equal(code, 2, `${what}: exit status ${code}\n${log}`);
          assert.match(log, re);
          assert.ok(Date.now() - started < 20_000, `${what}: the agent did not stop by itself`);
          assert.equal(dump, before, `${what}: the kernel was changed`);
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
});

/** REST path of the collection an object is created in. */
function collection(o: { kind: string; metadata: { namespace?: string } }): string {
  const ns = encodeURIComponent(o.metadata.namespace ?? "");
  switch (o.kind) {
    case "Node":
      return "/api/v1/nodes";
    case "Namespace":
      return "/api/v1/namespaces";
    case "Service":
      return `/api/v1/namespaces/${ns}/services`;
    case "Pod":
      return `/api/v1/namespaces/${ns}/pods`;
    case "Endpoints":
      return `/api/v1/namespaces/${ns}/endpoints`;
    case "EndpointSlice":
      return `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`;
    case "NetworkPolicy":
      return `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`;
    default:
      throw new Error(`no collection for ${o.kind}`);
  }
}

Deno.test({
  name: "bad input: the object cases the real API server accepts, read by the agent from it",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const { sharedApiServer } = await import("../fixtures/apiserver.ts");
  const { bridgeApiInto } = await import("../fixtures/api_bridge.ts");
  const { useNames } = await import("./bad_input_cases.ts");
  const id = crypto.randomUUID().slice(0, 6);
  const nodeName = `bad-node-${id}`;
  useNames(`bad-${id}`, nodeName);
  // deno-lint-ignore no-explicit-any
  type Obj = any;
  const cases = buildCases();
  const base = baseText().split("\n---\n").map((d) => JSON.parse(d) as Obj);
  useNames("bad", "node-1");
  const api = await sharedApiServer();
  const create = async (o: Obj) => {
    const { status, ...spec } = o;
    const made = await api.request("POST", collection(o), spec) as Obj;
    if (status && (o.kind === "Pod" || o.kind === "Node" || o.kind === "Service")) {
      await api.request(
        "PATCH",
        `${collection(o)}/${encodeURIComponent(made.metadata.name)}/status`,
        { status },
        "application/merge-patch+json",
      );
    }
  };
  for (const o of base) await create(o);
  const namespaces = new Set(cases.flatMap((c) => (c.objects ?? []).map((o) => o.metadata?.namespace)));
  for (const ns of namespaces) {
    if (ns && ns !== base[1].metadata.name) {
      await create({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }).catch(() => {});
    }
  }
  const accepted: BadCase[] = [];
  const refused: string[] = [];
  for (const c of cases) {
    // The agent reads EndpointSlices from a server that serves them; legacy Endpoints are its fallback.
    if (c.objects?.some((o) => o.kind === "Endpoints")) continue;
    try {
      for (const o of c.objects ?? []) await create(o);
      accepted.push(c);
    } catch (e) {
      refused.push(`${c.id}: ${(e as Error).message.replace(/\s+/g, " ").slice(0, 160)}`);
    }
  }
  console.log(`API server accepted ${accepted.length} of ${cases.length} object cases; it refused:`);
  for (const r of refused) console.log(`  ${r}`);
  assert.ok(accepted.length >= 10, "the server accepted too few cases to test this path");
  await withNetns(async (ns) => {
    await using bridge = await bridgeApiInto(ns, api);
    const present = accepted.flatMap((c) => c.present);
    const { log, dump, code } = await runAgent(
      ns,
      ["--kubeconfig", bridge.kubeconfigPath],
      present,
      90_000,
      nodeName,
    );
    assert.ok(code === 0 || code === 143 || code === null, `agent exited ${code}:\n${log.slice(-3000)}`);
    assert.doesNotMatch(log, /apply failed|sync failed|Uncaught|TypeError/, "a controller failed");
    for (const c of accepted) {
      const errors = checkCase(c, log, dump);
      await t.step({
        name: c.id,
        fn: () => assert.deepEqual(errors, [], `${c.id}:\n  ${errors.join("\n  ")}`),
      });
    }
  });
});

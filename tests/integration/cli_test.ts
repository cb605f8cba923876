/**
 * The `kube-router` command as an operator runs it: exit codes, help, the README's dry-run
 * main command, the bundled single-file artifact, health and SIGTERM, cleanup.
 * Addresses: the example cluster's (192.0.2.0/24, 198.51.100.0/24, 10.244.0.0/16) exist only as
 * manifest data; every agent run that could touch the kernel runs inside a fresh network
 * namespace `krcli-<random>` that the test removes.
 */
import assert from "node:assert/strict";
import { CommandRunner } from "../../kernel/exec.ts";
import { type AgentProcessOptions, REPO_ROOT as root, runAgent, spawnAgent } from "../fixtures/agent.ts";
import { SHIPPED_RUN_FLAGS, SHIPPED_V8_FLAGS } from "../../options/v8_flags.ts";

const deno = Deno.execPath();
const EXAMPLE = `${root}manifests/examples/cluster.yaml`;
const sh = new CommandRunner();

/** `kube-router ARGS` to completion, from the repository root. */
function kr(
  args: string[],
  opts: Pick<AgentProcessOptions, "netns" | "script" | "denoFlags" | "v8Flags"> = {},
) {
  return runAgent(args, { ...opts, cwd: root });
}

async function withNetns<T>(fn: (ns: string) => Promise<T>): Promise<T> {
  const ns = `krcli-${crypto.randomUUID().slice(0, 8)}`;
  await sh.run(["ip", "netns", "add", ns]);
  try {
    await sh.run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    return await fn(ns);
  } finally {
    await sh.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
  }
}

/**
 * What an agent could leave behind: rules, non-built-in chains, ipsets, nft tables other than
 * iptables-nft's own, links. Empty built-in tables are not state: iptables-nft creates them on
 * any listing.
 */
async function kernelState(ns: string): Promise<string> {
  const builtin = /^:(INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) ACCEPT/;
  const ipt = (await sh.run(["iptables-save"], { netns: ns })).stdout.split("\n")
    .filter((l) => (l.startsWith("-") || l.startsWith(":")) && !builtin.test(l));
  const sets = (await sh.run(["ipset", "list", "-n"], { netns: ns })).stdout.trim();
  const tables = (await sh.run(["nft", "list", "tables"], { netns: ns })).stdout.split("\n")
    .filter((l) => l && !/^table (ip|ip6|inet) (filter|nat|mangle|raw|security)$/.test(l));
  const links = (await sh.run(["ip", "-o", "link", "show"], { netns: ns })).stdout.split("\n").map((l) =>
    l.split(":")[1]
  );
  return JSON.stringify({ ipt, sets, tables, links }, null, 1);
}

/** Starts `kube-router firewall` on the example cluster inside `ns`, as node-1. */
function spawnFirewall(ns: string, extra: string[], output: "piped" | "null" = "piped"): Deno.ChildProcess {
  return spawnAgent(["firewall", "--manifests", EXAMPLE, "--hostname-override", "node-1", ...extra], {
    netns: ns,
    stdout: output,
    stderr: output,
  });
}

Deno.test("cli: bad usage exits 2 with one line naming the flag", async () => {
  const cases: Array<[string[], RegExp]> = [
    [["--no-such-flag"], /unknown flag: --no-such-flag/],
    [["run", "--iptables-sync-period=fast"], /--iptables-sync-period.*Go duration/],
    [["--iptables-sync-period=-1m"], /--iptables-sync-period: must be a duration greater than 0/],
    [["--cluster-asn=1"], /--cluster-asn: a private ASN/],
    [["--service-cluster-ip-range=10.96.0.0/40"], /--service-cluster-ip-range/],
    [["--peer-router-ips=192.0.2.1"], /--peer-router-ips has 1 entries but --peer-router-asns has 0/],
    [["proxy", "extra-arg"], /unexpected argument "extra-arg"/],
  ];
  for (const [args, re] of cases) {
    const r = await kr(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, "no stack trace for bad usage");
  }
});

Deno.test("cli: --help, version, and the legacy spellings", async () => {
  const help = await kr(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--peer-router-ips ipSlice/);
  assert.match(help.stdout, /--run-router\s+Enables Pod Networking.*\(default true\)/);
  const v = await kr(["version"]);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^kube-router v/);
  assert.equal((await kr(["-V"])).code, 0);
});

Deno.test("cli: the README's dry-run prints every controller's plan and changes nothing", async () => {
  await withNetns(async (ns) => {
    const before = await kernelState(ns);
    const r = await kr(["run", "--dry-run", "--manifests", EXAMPLE, "--hostname-override", "node-1"], {
      netns: ns,
    });
    assert.equal(r.code, 0, r.stderr);
    for (const c of ["router", "proxy", "firewall"]) {
      assert.match(r.stdout, new RegExp(`### ${c}: transactions for node node-1`));
    }
    assert.match(r.stdout, /iptables(-nft)?-restore --noflush/);
    assert.match(r.stdout, /KUBE-POD-FW-/);
    assert.match(r.stdout, /ipset restore/);
    assert.equal(await kernelState(ns), before, "dry-run changed the kernel");
  });
});

Deno.test("cli: the bundle as `deno task bundle` builds it runs (code-split, lazy chunks load)", async () => {
  // The task's own build, pointed at a temporary directory: what the image ships.
  const task: string = JSON.parse(await Deno.readTextFile(`${root}deno.json`)).tasks.bundle;
  assert.equal(task, "deno run -A tools/bundle.ts");
  const dir = await Deno.makeTempDir();
  const b = await new Deno.Command(deno, {
    args: ["run", "-A", "tools/bundle.ts", "--outdir", dir],
    cwd: root,
  })
    .output();
  assert.equal(b.code, 0, new TextDecoder().decode(b.stderr));
  // No chunk loads Node's module loader at start any more (tools/bundle.ts made `require` lazy).
  for (const e of Deno.readDirSync(dir)) {
    const text = await Deno.readTextFile(`${dir}/${e.name}`);
    assert.ok(!text.includes('from "node:module"'), `${e.name} imports node:module`);
  }
  // Started as the image starts it (options/v8_flags.ts).
  const shipped = { script: `${dir}/main.js`, denoFlags: SHIPPED_RUN_FLAGS, v8Flags: SHIPPED_V8_FLAGS };
  const help = await kr(["--help"], shipped);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /--iptables-sync-period/);
  const dry = await kr(
    ["run", "--dry-run", "--manifests", EXAMPLE, "--hostname-override", "node-1"],
    shipped,
  );
  assert.equal(dry.code, 0, dry.stderr);
  for (const c of ["router", "proxy", "firewall"]) {
    assert.match(dry.stdout, new RegExp(`### ${c}: transactions for node node-1`));
  }
  // The kubeconfig reader (yaml) and client-node (annotate) live in chunks loaded on demand.
  // One kubeconfig the block reader takes, one (a flow sequence) it leaves to the yaml package.
  const kc = `${dir}/kubeconfig`;
  for (
    const text of ["apiVersion: v1\nkind: Config\nclusters: []\n", "kind: Config\nclusters: [{name: a}]\n"]
  ) {
    await Deno.writeTextFile(kc, text);
    const bad = await kr(["firewall", "--kubeconfig", kc, "--hostname-override", "node-1"], shipped);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /current-context is not set/);
  }
  const node = `${dir}/node.yaml`;
  await Deno.writeTextFile(
    node,
    "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n  annotations:\n    kube-router.io/node.asn: bogus\n",
  );
  const ann = await kr(["annotate", "--validate", "-f", node], shipped);
  assert.equal(ann.code, 2, ann.stderr);
  assert.match(ann.stderr, /node\/n1: annotation kube-router.io\/node.asn: "bogus" is not an ASN/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli: the agent programs its rules and reports healthy, SIGTERM stops cleanly, cleanup removes everything", async () => {
  await withNetns(async (ns) => {
    const before = await kernelState(ns);
    const port = 20000 + Math.floor(Math.random() * 20000);
    const child = spawnFirewall(ns, [`--health-port=${port}`, "--iptables-sync-period=1m"]);
    try {
      // Health is OK during the start-up allowance already (as upstream); the rules prove the sync.
      let rules = "";
      for (let i = 0; i < 100 && !rules.includes("KUBE-POD-FW-"); i++) {
        await new Promise((r) => setTimeout(r, 100));
        rules =
          (await sh.run(["iptables", "-S", "KUBE-ROUTER-FORWARD"], { netns: ns, okCodes: [0, 1] })).stdout;
      }
      assert.match(rules, /KUBE-POD-FW-/, "the firewall never programmed its chains");
      const c = await sh.run(["curl", "-s", "-w", " %{http_code}", `http://127.0.0.1:${port}/healthz`], {
        netns: ns,
      });
      assert.equal(c.stdout, "OK\n 200");
    } finally {
      child.kill("SIGTERM");
    }
    const t0 = Date.now();
    const out = await child.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.ok(Date.now() - t0 < 10_000, "SIGTERM took too long");
    assert.match(new TextDecoder().decode(out.stderr), /kube-router stopped/);

    const clean = await kr(["--cleanup-config", "--run-router=false"], { netns: ns });
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(await kernelState(ns), before, "cleanup left state behind");
  });
});

Deno.test("cli: Prometheus metrics under upstream's names on --metrics-port", async () => {
  await withNetns(async (ns) => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const child = spawnFirewall(ns, ["--health-port=0", `--metrics-port=${port}`], "null");
    try {
      let text = "";
      for (let i = 0; i < 100 && !/kube_router_controller_policy_chains [1-9]/.test(text); i++) {
        await new Promise((r) => setTimeout(r, 100));
        text =
          (await sh.run(["curl", "-s", `http://127.0.0.1:${port}/metrics`], { netns: ns, okCodes: [0, 7] }))
            .stdout;
      }
      assert.match(
        text,
        /# TYPE kube_router_build_info gauge\nkube_router_build_info\{.*version="v[^"]+".*\} 1/,
      );
      assert.match(text, /kube_router_controller_iptables_sync_time_count [1-9]/);
      assert.match(text, /kube_router_controller_policy_chains [1-9]\d*/);
      const notFound = await sh.run([
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `http://127.0.0.1:${port}/other`,
      ], {
        netns: ns,
      });
      assert.equal(notFound.stdout, "404");
    } finally {
      child.kill("SIGTERM");
      await child.status;
    }
  });
});

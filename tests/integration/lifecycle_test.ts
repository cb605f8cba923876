/**
 * The agent's life cycle, as kubelet drives it: SIGTERM (or SIGINT) at any moment ends the real
 * main.ts within 5 s — during the initial sync against an API server that never answers (which
 * used to wait for --cache-sync-timeout), during a read that never returns (a FIFO where a file
 * is expected), and at random moments of start-up and steady state. A missing own Node after
 * the initial sync is an error (as upstream), through the real API server too.
 *
 * Every agent runs inside a fresh network namespace `krlc-<random>` that the test removes.
 */
import assert from "node:assert/strict";
import { CommandRunner } from "../../kernel/exec.ts";
import { sharedApiServer } from "../fixtures/apiserver.ts";
import { bridgeApiInto } from "../fixtures/api_bridge.ts";
import { ServerProcess } from "../fixtures/process.ts";
import { REPO_ROOT as root, spawnAgent as spawnKubeRouter } from "../fixtures/agent.ts";
import { SHIPPED_V8_FLAGS } from "../../options/v8_flags.ts";

const EXAMPLE = `${root}manifests/examples/cluster.yaml`;
const sh = new CommandRunner();
/** The bound the issue sets: kubelet's grace period is 30 s, ours must be far below. */
const STOP_BOUND_MS = 5_000;

async function withNetns<T>(fn: (ns: string, tmp: string) => Promise<T>): Promise<T> {
  const ns = `krlc-${crypto.randomUUID().slice(0, 8)}`;
  const tmp = await Deno.makeTempDir({ prefix: "krlc-" });
  await sh.run(["ip", "netns", "add", ns]);
  try {
    await sh.run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    return await fn(ns, tmp);
  } finally {
    await sh.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

function spawnAgent(ns: string, args: string[], v8Flags?: readonly string[]): Deno.ChildProcess {
  return spawnKubeRouter(args, {
    netns: ns,
    stdout: "null",
    env: { NODE_NAME: "", KUBE_ROUTER_CNI_CONF_FILE: "" },
    v8Flags,
  });
}

/** Reads stderr as it comes, so a test can wait for a log line. */
function tail(child: Deno.ChildProcess): { text: () => string; done: Promise<void> } {
  let text = "";
  const done = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) text += chunk;
  })();
  return { text: () => text, done };
}

async function waitFor(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} not seen within ${ms} ms`);
}

/** Sends `sig`, returns the exit status and how long the process took to end. */
async function stop(child: Deno.ChildProcess, sig: Deno.Signal): Promise<{ code: number; ms: number }> {
  const t0 = performance.now();
  try {
    child.kill(sig);
  } catch { /* already gone */ }
  // A process that ignores the signal must fail the test, not hang it.
  const guard = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, 3 * STOP_BOUND_MS);
  const status = await child.status;
  clearTimeout(guard);
  return { code: status.code, ms: performance.now() - t0 };
}

/** A TCP endpoint in `ns` that accepts connections and never answers (a hung API server). */
function blackhole(ns: string, tmp: string, port: number): ServerProcess {
  const p = new ServerProcess(
    "blackhole",
    ["socat", `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, "SYSTEM:sleep 300"],
    `${tmp}/blackhole.log`,
    ns,
  );
  p.start();
  return p;
}

async function kubeconfigFor(tmp: string, server: string): Promise<string> {
  const path = `${tmp}/kubeconfig`;
  // A CA of our own: the endpoint never gets as far as TLS, but the client wants one.
  await sh.run([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-subj",
    "/CN=krlc-ca",
    "-days",
    "1",
    "-keyout",
    `${tmp}/ca.key`,
    "-out",
    `${tmp}/ca.crt`,
  ]);
  await Deno.writeTextFile(
    path,
    `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "${server}", certificate-authority: "${tmp}/ca.crt" } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
`,
  );
  return path;
}

Deno.test({
  name:
    "lifecycle: SIGTERM and SIGINT during the initial sync (API server never answers) end the agent within 5 s",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNetns(async (ns, tmp) => {
      const hole = blackhole(ns, tmp, 6443);
      try {
        await waitFor(
          async () =>
            (await sh.run(["ss", "-ltnH", "sport = :6443"], { netns: ns, okCodes: [0, 1] })).stdout.includes(
              "6443",
            ),
          5_000,
          "the blackhole listener",
        );
        const kc = await kubeconfigFor(tmp, "https://127.0.0.1:6443");
        for (const sig of ["SIGTERM", "SIGINT"] as const) {
          const child = spawnAgent(ns, [
            "firewall",
            `--kubeconfig=${kc}`,
            "--hostname-override=node-1",
            "--health-port=0",
            "--cache-sync-timeout=1m",
          ]);
          const log = tail(child);
          await waitFor(() => /starting on node node-1/.test(log.text()), 15_000, "the start-up line");
          await new Promise((r) => setTimeout(r, 1_500)); // well inside the initial list
          const r = await stop(child, sig);
          await log.done;
          assert.ok(r.ms < STOP_BOUND_MS, `${sig} during the initial sync took ${Math.round(r.ms)} ms`);
          assert.equal(r.code, 0, log.text());
          assert.match(log.text(), new RegExp(`stopped.*received ${sig}`));
        }
      } finally {
        await hole.stop();
      }
    });
  },
});

Deno.test({
  name:
    "lifecycle: SIGTERM during a read that never returns (a FIFO as the CNI file, as the manifests) ends within 5 s",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNetns(async (ns, tmp) => {
      // The router reads its CNI config on every sync; a FIFO there blocks that read forever.
      const fifo = `${tmp}/10-kuberouter.conf`;
      await sh.run(["mkfifo", fifo]);
      const manifest = `${tmp}/cluster.yaml`;
      await Deno.writeTextFile(
        manifest,
        `apiVersion: v1
kind: Node
metadata: { name: node-1 }
spec: { podCIDR: 10.244.1.0/24 }
status: { addresses: [{ type: InternalIP, address: 192.0.2.11 }] }
`,
      );
      const child = spawnAgent(ns, [
        "router",
        `--manifests=${manifest}`,
        "--hostname-override=node-1",
        `--cni-conf-file=${fifo}`,
        "--health-port=0",
        "--enable-ibgp=false",
        "--gobgp-admin-port=0",
      ]);
      const log = tail(child);
      // The host stage ran (kube-bridge exists), so the CNI stage is blocked in its read now.
      await waitFor(
        async () =>
          (await sh.run(["ip", "link", "show", "kube-bridge"], { netns: ns, okCodes: [0, 1] })).code === 0,
        15_000,
        "kube-bridge",
      );
      await new Promise((r) => setTimeout(r, 500));
      const r = await stop(child, "SIGTERM");
      await log.done;
      assert.ok(
        r.ms < STOP_BOUND_MS,
        `SIGTERM during a blocked read took ${Math.round(r.ms)} ms: ${log.text()}`,
      );

      // The manifests path itself a FIFO: refused up front, or stopped within the bound.
      const mfifo = `${tmp}/objects.yaml`;
      await sh.run(["mkfifo", mfifo]);
      const m = spawnAgent(ns, [
        "firewall",
        `--manifests=${mfifo}`,
        "--hostname-override=node-1",
        "--health-port=0",
      ]);
      const mlog = tail(m);
      await new Promise((r) => setTimeout(r, 2_500));
      const mr = await stop(m, "SIGTERM");
      await mlog.done;
      assert.ok(mr.ms < STOP_BOUND_MS, `SIGTERM with a FIFO as --manifests took ${Math.round(mr.ms)} ms`);
    });
  },
});

Deno.test({
  name: "lifecycle: SIGTERM at random moments of start-up and steady state: always within 5 s, exit 0",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNetns(async (ns) => {
      // Delays spread over start-up (module loading, manifest read, first sync) and steady state.
      const delays = [0, 150, 400, 800, 1_300, 2_000, 3_000].map((d) => d + Math.floor(Math.random() * 150));
      for (const delay of delays) {
        const child = spawnAgent(ns, [
          "firewall",
          `--manifests=${EXAMPLE}`,
          "--hostname-override=node-1",
          "--health-port=0",
        ]);
        const log = tail(child);
        await new Promise((r) => setTimeout(r, delay));
        const r = await stop(child, "SIGTERM");
        await log.done;
        assert.ok(r.ms < STOP_BOUND_MS, `SIGTERM after ${delay} ms took ${Math.round(r.ms)} ms`);
        // Before the signal handlers are installed, the default action (terminate) applies.
        assert.ok(r.code === 0 || r.code === 143, `SIGTERM after ${delay} ms: exit ${r.code}: ${log.text()}`);
      }
    });
  },
});

Deno.test({
  name:
    "lifecycle: a missing own Node after the initial sync is an error (manifests and the real API server)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNetns(async (ns, tmp) => {
      const viaFile = spawnAgent(ns, ["firewall", `--manifests=${EXAMPLE}`, "--hostname-override=node-9"]);
      const fileLog = tail(viaFile);
      const s1 = await viaFile.status;
      await fileLog.done;
      assert.equal(s1.code, 1, fileLog.text());
      assert.match(fileLog.text(), /node "node-9" not found in the cluster after the initial sync/);
      assert.match(fileLog.text(), /--hostname-override/);

      const api = await sharedApiServer();
      await using bridge = await bridgeApiInto(ns, api, { dir: tmp });
      const viaApi = spawnAgent(ns, [
        "firewall",
        `--kubeconfig=${bridge.kubeconfigPath}`,
        "--hostname-override=krlc-no-such-node",
        "--health-port=0",
      ]);
      const apiLog = tail(viaApi);
      const s2 = await viaApi.status;
      await apiLog.done;
      assert.equal(s2.code, 1, apiLog.text());
      assert.match(apiLog.text(), /node "krlc-no-such-node" not found in the cluster after the initial sync/);
    });
  },
});

Deno.test({
  name: "lifecycle: with the shipped V8 flags, the agent gives memory back once quiet after its first sync",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNetns(async (ns) => {
      const child = spawnAgent(ns, [
        "firewall",
        `--manifests=${EXAMPLE}`,
        "--hostname-override=node-1",
        "--health-port=0",
        "-v=1",
      ], SHIPPED_V8_FLAGS);
      const log = tail(child);
      const line = /returned freed memory to the OS: resident ([\d.]+) -> ([\d.]+) MB/;
      try {
        // The first sync, then one quiet second (controllers/memory_trim.ts).
        await waitFor(() => line.test(log.text()), 20_000, "the memory trim's log line");
        await new Promise((r) => setTimeout(r, 3_000)); // nothing to do: no second trim
      } finally {
        await stop(child, "SIGTERM");
        await log.done;
      }
      const [, before, after] = line.exec(log.text())!;
      assert.ok(Number(after) < Number(before), log.text());
      assert.equal(log.text().match(new RegExp(line, "g"))?.length, 1, "one trim for one burst of work");
    });
  },
});

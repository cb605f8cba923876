/**
 * `kill -9` of the agent at random points of a large firewall apply (thousands of rules, a
 * namespace `krkf-<random>` per backend): after each kill, once the tools it started have
 * finished, each tool's state is the old one or the new one (never a truncated or half-applied
 * script), and a restarted agent converges to the new one.
 *
 * The firewall flips between two generated clusters (A and B: different labels, policies and
 * ports on 150 local pods), so every run is a real transition. What "old or new" means per tool:
 * - iptables (`iptables-save -t filter`): the whole table is A's or B's (one restore per table);
 * - nftables (`nft list table`): the table is A's or B's (one `nft -f` transaction);
 * - ipset (`ipset save`): every set holds A's or B's members (sets are swapped, never refilled in
 *   place) and no other set exists (no leftover temporary set). Sets only one side has may
 *   coexist for a moment: a new set must exist before the rule that references it, and an old
 *   one until no rule does.
 * Each kill lands in the apply window (calibrated from the agent's own "firewall applied … in
 * N s" line); the test reports how many kills caught a tool in transition.
 */
import assert from "node:assert/strict";
import { CommandRunner } from "../../kernel/exec.ts";
import { spawnAgent as spawnKubeRouter } from "../fixtures/agent.ts";

const sh = new CommandRunner();
const RUNS: Record<"iptables" | "nft", number> = { iptables: 25, nft: 25 };

/** A cluster of `pods` local pods and `policies` policies; `v` (0/1) shifts labels and ports. */
function cluster(v: number, pods = 150, policies = 40): string {
  const out = ["apiVersion: v1", "kind: List", "items:"];
  out.push(
    "  - {apiVersion: v1, kind: Node, metadata: {name: node-1}, spec: {podCIDR: 10.244.0.0/16}, " +
      "status: {addresses: [{type: InternalIP, address: 192.0.2.11}]}}",
    "  - {apiVersion: v1, kind: Namespace, metadata: {name: f, labels: {team: f}}}",
  );
  for (let i = 0; i < pods; i++) {
    const ip = `10.244.${Math.floor(i / 250)}.${(i % 250) + 2}`;
    out.push(
      `  - {apiVersion: v1, kind: Pod, metadata: {name: p${i}, namespace: f, labels: {app: a${
        (i + v) % 20
      }, ` +
        `tier: t${(i + 2 * v) % 5}}}, spec: {nodeName: node-1, containers: [{name: c, image: x}]}, ` +
        `status: {phase: Running, hostIP: 192.0.2.11, podIP: ${ip}, podIPs: [{ip: ${ip}}]}}`,
    );
  }
  for (let j = 0; j < policies; j++) {
    const port = 1000 + j + 1000 * v;
    out.push(
      `  - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: np${j}, namespace: f}, ` +
        `spec: {podSelector: {matchLabels: {app: a${j % 20}}}, policyTypes: [Ingress, Egress], ` +
        `ingress: [{from: [{podSelector: {matchLabels: {tier: t${(j + v) % 5}}}}, ` +
        `{ipBlock: {cidr: 198.51.${j % 256}.0/24}}], ports: [{protocol: TCP, port: ${port}}]}], ` +
        `egress: [{to: [{podSelector: {matchLabels: {app: a${(j + 3 + v) % 20}}}}], ` +
        `ports: [{protocol: UDP, port: ${port}}]}]}}`,
    );
  }
  return out.join("\n") + "\n";
}

interface ToolState {
  iptables: string;
  nft: string;
  /** Set name → canonical text (header + sorted members). */
  sets: Map<string, string>;
}

/** Sorts the members of every `elements = { … }` block (nft lists them in its own order). */
function canonicalNft(text: string): string {
  return text.replace(
    /elements = \{([^}]*)\}/g,
    (_m, body: string) =>
      `elements = { ${body.split(",").map((e) => e.trim()).filter(Boolean).sort().join(", ")} }`,
  );
}

async function readState(ns: string): Promise<ToolState> {
  const iptables = (await sh.run(["iptables-save", "-t", "filter"], { netns: ns })).stdout.split("\n")
    .filter((l) => l && !l.startsWith("#")).map((l) => l.replace(/\[\d+:\d+\]/, "[0:0]")).join("\n");
  const nftText = (await sh.run(["nft", "list", "table", "ip", "kube-router-filter-ipv4"], {
    netns: ns,
    okCodes: [0, 1],
  })).stdout;
  const sets = new Map<string, string[]>();
  for (const l of (await sh.run(["ipset", "save"], { netns: ns })).stdout.split("\n")) {
    const m = /^(create|add) (\S+)/.exec(l);
    // `initval` is the hash seed, random for every set created (a swap brings a new one).
    if (m) (sets.get(m[2]) ?? sets.set(m[2], []).get(m[2])!).push(l.replace(/ initval 0x[0-9a-f]+/, ""));
  }
  return {
    iptables,
    nft: canonicalNft(nftText),
    sets: new Map([...sets].map(([n, lines]) => [n, [lines[0], ...lines.slice(1).sort()].join("\n")])),
  };
}

/** Which of `a`/`b` each tool's state equals; a message for anything else. */
function classify(
  s: ToolState,
  a: ToolState,
  b: ToolState,
): { tools: Record<string, "A" | "B">; bad: string[] } {
  const bad: string[] = [];
  const tools: Record<string, "A" | "B"> = {};
  const which = (name: string, x: string, ax: string, bx: string) => {
    if (x === ax) tools[name] = "A";
    else if (x === bx) tools[name] = "B";
    else bad.push(`${name}: neither the old nor the new state`);
  };
  which("iptables", s.iptables, a.iptables, b.iptables);
  which("nft", s.nft, a.nft, b.nft);
  for (const [name, text] of s.sets) {
    const inA = a.sets.get(name), inB = b.sets.get(name);
    if (inA === undefined && inB === undefined) {
      bad.push(`ipset: set ${name} is in neither state (a leftover)`);
    } else if (text !== inA && text !== inB) {
      bad.push(`ipset: set ${name} holds neither its old nor its new members`);
    }
  }
  // Sets both states have must exist throughout (a referenced set is never missing).
  for (const name of a.sets.keys()) {
    if (b.sets.has(name) && !s.sets.has(name)) bad.push(`ipset: set ${name} is missing`);
  }
  return { tools, bad };
}

function spawnAgent(ns: string, manifest: string, extra: string[]): Deno.ChildProcess {
  return spawnKubeRouter(
    [
      "firewall",
      `--manifests=${manifest}`,
      "--hostname-override=node-1",
      "--health-port=0",
      "-v=1",
      ...extra,
    ],
    { netns: ns, stdout: "null" },
  );
}

/** Runs the agent until its first apply is logged; returns ms from spawn and the apply's ms. */
async function converge(
  ns: string,
  manifest: string,
  extra: string[],
): Promise<{ at: number; took: number }> {
  const t0 = performance.now();
  const child = spawnAgent(ns, manifest, extra);
  let text = "";
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // A read may never return (an agent that stays silent): the deadline must not depend on it.
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the agent did not apply within 90 s: ${text}`)), 90_000);
  });
  try {
    for (;;) {
      const { value, done } = await Promise.race([reader.read(), deadline]);
      if (done) throw new Error(`the agent exited before applying: ${text}`);
      text += value;
      // "firewall: applied 2 kernel transactions in 2323 ms" (older wording: "firewall applied … in 2.3s").
      const m = /firewall:? applied .* in (?:([\d.]+) ms|([\d.]+)s)/.exec(text);
      if (m) {
        return { at: performance.now() - t0, took: m[1] !== undefined ? Number(m[1]) : Number(m[2]) * 1000 };
      }
    }
  } finally {
    clearTimeout(timer);
    child.kill("SIGTERM");
    await reader.cancel().catch(() => {});
    await child.status;
  }
}

/** Waits until no process runs inside `ns` (the killed agent's tools finish on their own). */
async function quiesce(ns: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const pids = (await sh.run(["ip", "netns", "pids", ns])).stdout.trim();
    if (pids === "") return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`processes still running in ${ns}`);
}

for (const backend of ["iptables", "nft"] as const) {
  Deno.test({
    name: `fault: kill -9 during a large ${backend} firewall apply, ${
      RUNS[backend]
    } times: each tool old or new, restart converges`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const ns = `krkf-${crypto.randomUUID().slice(0, 8)}`;
      const tmp = await Deno.makeTempDir({ prefix: "krkf-" });
      const extra = backend === "nft" ? ["--use-nftables-for-netpol"] : [];
      await sh.run(["ip", "netns", "add", ns]);
      try {
        await sh.run(["ip", "-n", ns, "link", "set", "lo", "up"]);
        const files = [`${tmp}/a.yaml`, `${tmp}/b.yaml`];
        await Deno.writeTextFile(files[0], cluster(0));
        await Deno.writeTextFile(files[1], cluster(1));
        // The two converged states, and the apply window (spawn → applied) of a transition.
        await converge(ns, files[0], extra);
        const stateA = await readState(ns);
        const toB = await converge(ns, files[1], extra);
        const stateB = await readState(ns);
        assert.notEqual(
          stateA[backend === "nft" ? "nft" : "iptables"],
          stateB[backend === "nft" ? "nft" : "iptables"],
        );
        const rules = (backend === "nft" ? stateB.nft : stateB.iptables).split("\n").length;
        assert.ok(rules > 1_000, `only ${rules} lines of rules: not a large apply`);

        const tally = { old: 0, new: 0, bothSets: 0 };
        let target = 0; // the kernel now holds B; the first kill interrupts B → A
        for (let run = 0; run < RUNS[backend]; run++) {
          // Uniform over the apply (with a margin before it for planning and after for the tail).
          const from = Math.max(0, toB.at - toB.took - 300), to = toB.at + 100;
          const delay = from + Math.random() * (to - from);
          const child = spawnAgent(ns, files[target], extra);
          child.stderr.cancel().catch(() => {});
          await new Promise((r) => setTimeout(r, delay));
          child.kill("SIGKILL");
          await child.status;
          await quiesce(ns);
          const { tools, bad } = classify(await readState(ns), stateA, stateB);
          assert.deepEqual(bad, [], `run ${run}: kill after ${Math.round(delay)} ms`);
          // Where the kill landed: before the commit (old), after it (new), sets of both sides.
          const primary = tools[backend];
          tally[primary === (target === 0 ? "A" : "B") ? "new" : "old"]++;
          const names = [...(await readState(ns)).sets.keys()];
          if (names.some((n) => !stateA.sets.has(n)) && names.some((n) => !stateB.sets.has(n))) {
            tally.bothSets++;
          }
          target = 1 - target;
          if (run === 11 || run === RUNS[backend] - 1) {
            // A restarted agent converges from whatever the kill left.
            await converge(ns, files[target], extra);
            const after = classify(await readState(ns), stateA, stateB);
            assert.deepEqual(after.bad, []);
            const want = target === 0 ? "A" : "B";
            assert.equal(after.tools[backend], want, `run ${run}: restart did not converge`);
            if (backend === "iptables") {
              const wantSets = target === 0 ? stateA.sets : stateB.sets;
              assert.deepEqual([...(await readState(ns)).sets.keys()].sort(), [...wantSets.keys()].sort());
            }
          }
        }
        console.log(
          `${backend}: ${
            RUNS[backend]
          } kills: ${tally.old} left the old ${backend} state, ${tally.new} the new; ` +
            `${tally.bothSets} left old and new sets side by side`,
        );
        // The kills must land on both sides of the commit, or the window was missed.
        assert.ok(tally.old > 0 && tally.new > 0, JSON.stringify(tally));
      } finally {
        await sh.run(["ip", "netns", "del", ns], { okCodes: [0, 1] });
        await Deno.remove(tmp, { recursive: true }).catch(() => {});
      }
    },
  });
}

/**
 * `deno task bench`: runs every benchmark in this folder, one after the other (they measure
 * wall time, so never concurrently), each as its own process so one's heap does not weigh on
 * the next. Each benchmark prints its figures with ratios against a reference it measures in the
 * same run; this driver only runs them and reports which failed.
 *
 *   deno task bench                 # every benchmark at its default (issue-sized) scale
 *   deno task bench firewall proxy  # only these
 *   deno task bench --quick         # small scales, for a smoke run
 *
 * Most need root (they create and remove their own network namespaces) and the lab packages
 * (bird2, gobgpd, frr) that `tests/run.sh` installs.
 *
 * @module
 */

/** Arguments for a smoke run at small scale, per benchmark. */
const QUICK: Record<string, string[]> = {
  bgp_codec: ["20000"],
  bgp_fullfeed: ["--prefixes", "20000", "--churn-seconds", "2"],
  bgp_transport_throughput: ["20"],
  firewall: ["1000", "50", "200", "10"],
  proxy: ["1000", "5"],
  router: [],
  router_fullfeed: [
    "--prefixes",
    "20000",
    "--prefixes6",
    "10000",
    "--protocols",
    "20",
    "--churn-seconds",
    "2",
  ],
};

const here = new URL(".", import.meta.url).pathname;
const quick = Deno.args.includes("--quick");
const only = Deno.args.filter((a) => !a.startsWith("--"));
const all = [...Deno.readDirSync(here)]
  .map((e) => e.name)
  .filter((n) => n.endsWith(".ts") && n !== "main.ts" && !n.endsWith("_test.ts"))
  // A benchmark is a script; a module that exports something is a helper the scripts share.
  .filter((n) => !/^export /m.test(Deno.readTextFileSync(`${here}${n}`)))
  .map((n) => n.replace(/\.ts$/, ""))
  .sort();
const chosen = only.length ? all.filter((n) => only.includes(n)) : all;
const unknown = only.filter((n) => !all.includes(n));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")}; available: ${all.join(", ")}`);
  Deno.exit(2);
}

const failed: string[] = [];
for (const name of chosen) {
  console.log(`\n=== bench/${name}.ts ${quick ? "(quick)" : ""}`);
  const args = ["run", "-A", `${here}${name}.ts`, ...(quick ? QUICK[name] ?? [] : [])];
  const t0 = performance.now();
  const { code } = await new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "inherit" })
    .output();
  console.log(`=== bench/${name}.ts exited ${code} after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (code !== 0) failed.push(name);
}
if (failed.length) {
  console.error(`\nfailed: ${failed.join(", ")}`);
  Deno.exit(1);
}

/**
 * Entry point: parse, dispatch, map errors to exit codes. The only module that calls `Deno.exit`.
 *
 * Exit codes: 0 success, 1 runtime failure, 2 bad usage (unknown flag, malformed value,
 * invalid annotation).
 *
 * @module
 */
import { ConfigError } from "./errors/mod.ts";
import { parseFlags } from "./cmd/flag_parse.ts";
import { usage } from "./cmd/help.ts";
import { optionProblems } from "./cmd/validate.ts";
import { VERSION } from "./cmd/version.ts";
import { setupLogging } from "./observe/log.ts";

const SUBCOMMANDS = [
  "run",
  "proxy",
  "firewall",
  "router",
  "cleanup",
  "annotate",
  "bgp",
  "trace",
  "version",
  "help",
];

const encoder = new TextEncoder();
const print = (text: string) => Deno.stdout.writeSync(encoder.encode(text));

/** Runs the CLI; returns the exit code. `signal` is aborted on SIGTERM/SIGINT. */
export async function main(argv: string[], signal: AbortSignal): Promise<number> {
  // Upstream has no subcommands: `kube-router --run-router=false ...` is `run`.
  const sub = SUBCOMMANDS.includes(argv[0]) ? argv[0] : "run";
  const rest = SUBCOMMANDS.includes(argv[0]) ? argv.slice(1) : argv;

  if (sub === "version") {
    print(`kube-router ${VERSION} (deno ${Deno.version.deno})\n`);
    return 0;
  }
  if (sub === "help") {
    print(usage() + "\n");
    return 0;
  }
  if (sub === "annotate") {
    const { runAnnotate } = await import("./cmd/annotate.ts");
    return await runAnnotate(rest, print);
  }
  if (sub === "trace") {
    const { runTrace } = await import("./cmd/trace.ts");
    return await runTrace(rest, print);
  }
  if (sub === "bgp") {
    const { runBgpStatus } = await import("./controllers/router/status_cli.ts");
    return await runBgpStatus(rest);
  }

  // Every usage problem at once: a malformed value does not hide the others.
  const parsed = parseFlags(rest, (name) => Deno.env.get(name), { collect: true });
  if (parsed.options.help) {
    print(usage() + "\n");
    return 0;
  }
  if (parsed.options.version) {
    print(`kube-router ${VERSION} (deno ${Deno.version.deno})\n`);
    return 0;
  }
  const problems = [...parsed.problems];
  if (parsed.positionals.length) {
    problems.push(
      `unexpected argument ${
        JSON.stringify(parsed.positionals[0])
      }: flags take the form --name=value; subcommands are ${SUBCOMMANDS.join(", ")} and come first`,
    );
  }
  // A refused flag kept its default: checks that read it would only echo the first problem.
  const echoes = (p: string) => [...parsed.refused].some((f) => p.includes(`--${f}`));
  problems.push(...optionProblems(parsed.options).filter((p) => !echoes(p)));
  if (problems.length) throw new ConfigError(problems);
  await setupLogging({
    verbosity: Number(parsed.options.v),
    format: parsed.options.logFormat as "text" | "json",
  });

  const { enabledControllers, runAgent, runCleanup, Stopped } = await import("./cmd/run.ts");
  if (sub === "cleanup" || parsed.options.cleanupConfig) {
    await runCleanup(parsed.options, { print });
    return 0;
  }
  try {
    await runAgent(parsed.options, enabledControllers(sub, parsed.options), signal, { print });
  } catch (e) {
    if (!(e instanceof Stopped)) throw e;
    console.error(`kube-router: ${e.message}`);
  }
  return 0;
}

/**
 * How long a graceful stop may take after SIGTERM/SIGINT before the process exits anyway
 * (kubelet's default grace period is 30 s; a stop must never wait for a blocked read or a
 * `--cache-sync-timeout`). A second signal exits at once.
 */
export const STOP_DEADLINE_MS = 3_000;

if (import.meta.main) {
  const abort = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => {
      if (abort.signal.aborted) {
        console.error(`kube-router: received ${sig} again while stopping; exiting now`);
        Deno.exit(1);
      }
      abort.abort(new Error(`received ${sig}`));
      const t = setTimeout(() => {
        console.error(`kube-router: did not stop within ${STOP_DEADLINE_MS} ms of ${sig}; exiting now`);
        Deno.exit(1);
      }, STOP_DEADLINE_MS);
      Deno.unrefTimer(t);
    });
  }
  let code: number;
  try {
    code = await main(Deno.args, abort.signal);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`kube-router: ${e.message.replaceAll("\n", "\nkube-router: ")}`);
      code = 2;
    } else {
      console.error(`kube-router: ${e instanceof Error ? e.message : String(e)}`);
      code = 1;
    }
  }
  Deno.exit(code);
}

/**
 * The two agents `bench/upstream.ts` compares: upstream kube-router built from the Go module
 * proxy, and one form of ours, each started inside a lab namespace with its stderr kept in a
 * log file, so a benchmark reads "exited early" with the end of that log instead of a timeout.
 *
 * @module
 */
import { CommandRunner } from "../kernel/exec.ts";
import { SHIPPED_RUN_FLAGS, SHIPPED_V8_FLAGS } from "../options/v8_flags.ts";

/** The newest version of upstream the Go module proxy serves here. */
export const UPSTREAM_VERSION = "v2.1.0";
const root = new URL("../", import.meta.url).pathname;
const sh = new CommandRunner();

/** Upstream's binary, built into ~/.cache/kube-router-deno/upstream-<version>/ on first use. */
export async function upstreamBinary(): Promise<string> {
  const home = Deno.env.get("HOME") ?? "/root";
  const dir = `${home}/.cache/kube-router-deno/upstream-${UPSTREAM_VERSION}`;
  const bin = `${dir}/kube-router`;
  try {
    await Deno.stat(bin);
    return bin;
  } catch { /* build it */ }
  console.error(`building upstream kube-router ${UPSTREAM_VERSION} from the Go module proxy (about 2 min)…`);
  await sh.run([
    "env",
    `GOBIN=${dir}`,
    "GOFLAGS=-buildvcs=false",
    "CGO_ENABLED=0",
    `PATH=${Deno.env.get("PATH")}:/usr/local/go/bin`,
    "go",
    "install",
    `github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@${UPSTREAM_VERSION}`,
  ]);
  return bin;
}

/** The bundle build of this process (built once). */
let bundled: Promise<void> | undefined;

/**
 * The command line of one form of our agent running `command` (firewall, router…): `source`
 * (deno run main.ts), `bundle` (dist/kube-router/main.js as the image runs it, with its V8
 * flags), or `bundle:<v8 flags>`. The bundle is built once per process.
 */
export async function oursArgv(form: string, command: string): Promise<string[]> {
  if (form === "source") return [Deno.execPath(), "run", "-A", `${root}main.ts`, command];
  const [kind, flags] = form.split(/:(.*)/s);
  if (kind !== "bundle") throw new Error(`--ours: unknown form ${form} (source, bundle, bundle:<v8 flags>)`);
  return [...await bundleArgv(flags?.split(/[ ,]+/).filter(Boolean)), command];
}

/**
 * `dist/kube-router/main.js` started as the image starts it: its environment (no update check),
 * its entrypoint's `deno run` flags and `v8` (the shipped V8 flags by default). Builds and
 * caches the bundle once per process.
 */
export async function bundleArgv(v8: readonly string[] = SHIPPED_V8_FLAGS): Promise<string[]> {
  const deno = Deno.execPath();
  await (bundled ??= buildBundle(deno));
  return [
    "env",
    "DENO_NO_UPDATE_CHECK=1",
    deno,
    "run",
    "-A",
    ...SHIPPED_RUN_FLAGS,
    ...(v8.length ? [`--v8-flags=${v8.join(",")}`] : []),
    `${root}dist/kube-router/main.js`,
  ];
}

async function buildBundle(deno: string): Promise<void> {
  const built = await new Deno.Command(deno, { args: ["task", "bundle"], cwd: root, stdout: "null" })
    .output();
  if (!built.success) throw new Error(`deno task bundle failed: ${new TextDecoder().decode(built.stderr)}`);
  // As the image does at build time (tests/cluster/images.sh): analysed once, not at agent start.
  await sh.run([deno, "cache", "--no-config", `${root}dist/kube-router/main.js`]);
}

/** One agent process inside a namespace. */
export interface AgentProcess extends AsyncDisposable {
  readonly pid: number;
  readonly logPath: string;
  /** Throws with the end of the log when the agent has exited. */
  alive(): Promise<void>;
  /** SIGTERM, then waits for the exit and the log. */
  stop(): Promise<void>;
}

/** Starts `argv` inside `netns` (`ip netns exec` execs it, so the pid is the agent's). */
export function spawnAgent(who: string, netns: string, argv: string[], logPath: string): AgentProcess {
  const logFile = Deno.openSync(logPath, { write: true, create: true, truncate: true });
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", netns, ...argv],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const logged = child.stderr.pipeTo(logFile.writable).catch(() => {});
  let exited = false;
  child.status.then(() => exited = true);
  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await logged;
      console.error(`  ${who} stopped; its log: ${logPath}`);
    })();
  return {
    pid: child.pid,
    logPath,
    async alive() {
      if (!exited) return;
      await logged;
      const tail = (await Deno.readTextFile(logPath)).split("\n").slice(-15).join("\n");
      throw new Error(`${who} exited early; the end of its log (${logPath}):\n${tail}`);
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

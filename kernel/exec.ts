/**
 * The only place in the agent that starts processes. Everything that touches the kernel goes
 * through a `Runner`, so `--dry-run` can swap in a runner that prints transactions, and tests
 * can run the real tools inside a network namespace by setting `netns`.
 *
 * @module
 */
import { netlinkAllowed, type NetlinkChannel, openNetlink } from "./netlink.ts";

/** What a finished command produced. */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Text written to the command's standard input (a restore payload). */
  stdin?: string;
  /** Run inside this network namespace (`ip netns exec NAME ...`). */
  netns?: string;
  /** Exit codes that are not failures (e.g. 1 for "not found" on a delete). Default: [0]. */
  okCodes?: number[];
  /** Reads the kernel without changing it: dry-run still executes these. */
  readOnly?: boolean;
}

/**
 * A command that failed: carries argv, exit code and stderr, and for restore-style payloads
 * the input line the tool complained about, so an operator sees exactly what was rejected.
 */
export class ExecError extends Error {
  readonly argv: readonly string[];
  readonly code: number;
  readonly stderr: string;
  /** 1-based line of stdin the tool named, and its text. */
  readonly offendingLine?: { number: number; text: string };

  constructor(
    argv: readonly string[],
    code: number,
    stderr: string,
    stdin?: string,
    options?: ErrorOptions,
  ) {
    const line = stdin === undefined ? undefined : findOffendingLine(stderr, stdin);
    const where = line ? ` at input line ${line.number}: ${JSON.stringify(line.text)}` : "";
    super(`${argv.join(" ")} exited with ${code}${where}: ${gist(stderr)}`, options);
    this.name = "ExecError";
    this.argv = argv;
    this.code = code;
    this.stderr = stderr;
    this.offendingLine = line;
  }
}

/**
 * A tool's complaint in one line: its last lines, and its first when there are more (a usage
 * dump says what it is, e.g. "BusyBox v1.35.0 ... multi-call binary", only in its first line).
 */
function gist(stderr: string): string {
  const lines = stderr.trim().split("\n").filter((l) => l.trim() !== "");
  if (lines.length <= 3) return lines.join(" | ");
  return [lines[0], "…", ...lines.slice(-2)].join(" | ");
}

/**
 * Finds the stdin line a batch tool named in its error message. Each tool words it its own way:
 * iptables-restore "line 7 failed" or "Error occurred at line: 7", ipset "Error in line 3:", ip -batch "Command failed -:4",
 * nft "/dev/stdin:12:5-9:" or "-:12:", ipvsadm-restore names no line.
 */
export function findOffendingLine(
  stderr: string,
  stdin: string,
): { number: number; text: string } | undefined {
  const patterns = [
    /Error occurred at line: (\d+)/i,
    /line:? (\d+) failed/i,
    /error in line (\d+)/i,
    /Command failed -:(\d+)/,
    /(?:\/dev\/stdin|-):(\d+):/,
    /line (\d+):/i,
  ];
  for (const re of patterns) {
    const m = re.exec(stderr);
    if (m) {
      const n = Number(m[1]);
      const lines = stdin.split("\n");
      if (n >= 1 && n <= lines.length) return { number: n, text: lines[n - 1] };
    }
  }
  return undefined;
}

/** Options of a long-running command whose output is read as it comes (`ip monitor`). */
export interface StreamOptions {
  /** Run inside this network namespace (`ip netns exec NAME ...`). */
  netns?: string;
  /** The command ended on its own (not through `close`), with this exit code. */
  onExit?: (code: number) => void;
}

/** A running streamed command. */
export interface StreamHandle {
  /** Stops it (SIGTERM) and resolves once its output is drained. */
  close(): Promise<void>;
}

/** Runs commands; the single seam between the agent and the processes it starts. */
export interface Runner {
  run(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /**
   * Starts a long-running command and hands each line of its stdout to `onLine`. Optional: a
   * wrapper without it is bypassed by `streamLines`, which then starts the command directly.
   */
  stream?(argv: readonly string[], onLine: (line: string) => void, options?: StreamOptions): StreamHandle;
  /**
   * A NETLINK_ROUTE channel into the same namespace `run` targets (bulk route installation,
   * kernel/ip/route_write.ts). Optional: a runner that must not touch the kernel directly
   * (dry-run, recording wrappers) leaves it out, and callers fall back to `ip -batch` through
   * `run`, so dry-run prints the routes and wrappers see them.
   */
  netlink?: () => NetlinkChannel;
  /**
   * True when reads may be empty because the tool could not run (`--dry-run` on a machine without
   * it, or without privileges): an absent value then means "unknown", not "the kernel has none".
   */
  readonly readsMayBeBlank?: boolean;
}

function withNetns(argv: readonly string[], netns?: string): string[] {
  return netns ? ["ip", "netns", "exec", netns, ...argv] : [...argv];
}

const resolved = new Map<string, string>();

/**
 * The full path of command `name` found on `PATH` (as `execvp` would), remembered per name; `name`
 * itself when it has a slash or is not found (the shell then reports it as usual).
 */
export function onPath(name: string, path = Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin"): string {
  if (name.includes("/")) return name;
  const key = `${path}\0${name}`;
  const hit = resolved.get(key);
  if (hit !== undefined) return hit;
  for (const dir of path.split(":")) {
    if (dir === "") continue;
    const full = `${dir}/${name}`;
    try {
      const st = Deno.statSync(full);
      if (st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0) {
        resolved.set(key, full);
        return full;
      }
    } catch {
      // not in this directory
    }
  }
  return name;
}

/** Runs the real tools through `Deno.Command`. */
export class CommandRunner implements Runner {
  /** Every command started, for metrics and tests that count process launches. */
  launched = 0;
  /**
   * Called when a tool refuses a transaction fed on stdin (a restore or batch exits non-zero:
   * nothing of it applied), with the tool's name; the agent counts these in its metrics.
   */
  onRefused?: (tool: string) => void;

  /** Present when FFI is allowed (see `Runner.netlink`); one channel per runner, opened on first use. */
  readonly netlink?: () => NetlinkChannel;
  #channel: NetlinkChannel | undefined;

  constructor(private readonly defaultNetns?: string) {
    if (netlinkAllowed()) this.netlink = () => this.#channel ??= openNetlink(this.defaultNetns);
  }

  async run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const full = withNetns(argv, options.netns ?? this.defaultNetns);
    this.launched++;
    // A payload goes to the tool as a whole file on its stdin, never through a pipe: if the
    // agent dies mid-write (kill -9, OOM), a pipe hands the tool a truncated script at EOF,
    // which `nft -f` commits as a partial ruleset and `ipset restore` half-applies. With a
    // file, the tool either never starts or reads all of it and finishes on its own. The file
    // is unlinked as soon as the shell has opened it, so a killed agent leaves nothing behind.
    let payload: string | undefined;
    let child: Deno.ChildProcess;
    try {
      if (options.stdin !== undefined) {
        payload = await Deno.makeTempFile({ prefix: "kube-router-stdin-" });
        await Deno.writeTextFile(payload, options.stdin);
      }
      // The tool goes to the shell by its full path: a busybox `sh` (Alpine's, or any image's
      // where `sh` is busybox) runs its own applet for a bare `ip`, which knows no `-batch`.
      const spawned = payload === undefined ? full : withNetns(
        [
          "sh",
          "-c",
          'exec 0<"$0" || exit 126; rm -f -- "$0"; exec "$@"',
          payload,
          onPath(argv[0]),
          ...argv.slice(1),
        ],
        options.netns ?? this.defaultNetns,
      );
      child = new Deno.Command(spawned[0], {
        args: spawned.slice(1),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      if (payload !== undefined) await Deno.remove(payload).catch(() => {});
      throw new ExecError(full, -1, `cannot start ${full[0]}: ${(e as Error).message}`, undefined, {
        cause: e,
      });
    }
    const out = await child.output();
    // The shell removed it unless it could not start at all.
    if (payload !== undefined) await Deno.remove(payload).catch(() => {});
    const result: ExecResult = {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
    if (!(options.okCodes ?? [0]).includes(result.code)) {
      if (options.stdin !== undefined) this.onRefused?.(argv[0].replace(/^.*\//, ""));
      throw new ExecError(full, result.code, result.stderr, options.stdin);
    }
    return result;
  }

  stream(argv: readonly string[], onLine: (line: string) => void, options: StreamOptions = {}): StreamHandle {
    this.launched++;
    return spawnStream(withNetns(argv, options.netns ?? this.defaultNetns), onLine, options);
  }
}

/** Spawns `full` and feeds its stdout to `onLine` line by line (`CommandRunner.stream`). */
function spawnStream(
  full: readonly string[],
  onLine: (line: string) => void,
  options: StreamOptions,
): StreamHandle {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(full[0], {
      args: full.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
  } catch (e) {
    throw new ExecError(full, -1, `cannot start ${full[0]}: ${(e as Error).message}`, undefined, {
      cause: e,
    });
  }
  let closing = false;
  const reading = (async () => {
    let rest = "";
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + text).split("\n");
      rest = lines.pop() ?? "";
      for (const l of lines) if (l.trim()) onLine(l);
    }
  })().catch(() => {});
  const status = child.status.then((s) => {
    if (!closing) options.onExit?.(s.code);
  });
  return {
    async close() {
      closing = true;
      try {
        child.kill("SIGTERM");
      } catch {
        // already exited
      }
      await status;
      await reading;
    },
  };
}

/**
 * Starts a streamed command through `runner` (so `--dry-run` shows it); a runner without
 * `stream` (a test's recording wrapper) is bypassed: the command runs directly.
 */
export function streamLines(
  runner: Runner,
  argv: readonly string[],
  onLine: (line: string) => void,
  options: StreamOptions = {},
): StreamHandle {
  if (runner.stream) return runner.stream(argv, onLine, options);
  return spawnStream(withNetns(argv, options.netns), onLine, options);
}

/** One transaction the dry-run runner recorded instead of running. */
export interface RecordedCommand {
  argv: string[];
  stdin?: string;
}

/**
 * `--dry-run`: read-only commands run for real when `inner` is given (so diffs are against the
 * real kernel) and answer "empty" otherwise; every command that would change the kernel is
 * recorded and handed to `print` instead of being run.
 */
export class DryRunRunner implements Runner {
  readonly recorded: RecordedCommand[] = [];
  readonly readsMayBeBlank = true;

  constructor(
    private readonly print: (cmd: RecordedCommand) => void = () => {},
    private readonly inner?: Runner,
  ) {}

  async run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    if (options.readOnly) {
      if (this.inner) {
        try {
          return await this.inner.run(argv, options);
        } catch {
          // A tool that is missing or needs privileges reads as an empty kernel in dry-run.
        }
      }
      return { code: 0, stdout: "", stderr: "" };
    }
    const cmd: RecordedCommand = { argv: withNetns(argv, options.netns), stdin: options.stdin };
    this.recorded.push(cmd);
    this.print(cmd);
    return { code: 0, stdout: "", stderr: "" };
  }

  /** Shown, not started: a dry run reads no events. */
  stream(
    argv: readonly string[],
    _onLine: (line: string) => void,
    options: StreamOptions = {},
  ): StreamHandle {
    const cmd: RecordedCommand = { argv: withNetns(argv, options.netns) };
    this.recorded.push(cmd);
    this.print(cmd);
    return { close: () => Promise.resolve() };
  }
}

/** Formats a recorded transaction as an operator would type it. */
export function formatCommand(cmd: RecordedCommand): string {
  const head = `# ${cmd.argv.map(shellQuote).join(" ")}`;
  return cmd.stdin === undefined ? head : `${head} <<'EOF'\n${cmd.stdin.replace(/\n?$/, "\n")}EOF`;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

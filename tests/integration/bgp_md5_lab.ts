/**
 * Namespace lab for the transport and BFD integration tests (bgp_md5_*, bgp_bfd_*): throwaway
 * network namespaces named `bgt-<tag>-<random>`, veth links between them, BIRD / gobgpd / FRR
 * daemons started inside them, and the agent script (bgp_md5_agent.ts) that runs our sockets
 * inside a namespace. Everything is torn down by `Lab.close()` in the tests' `finally`.
 *
 * @module
 */
import { CommandRunner } from "../../kernel/exec.ts";

export const runner: CommandRunner = new CommandRunner();

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws naming `what`). */
import { waitFor as waitForFixture } from "../fixtures/bgp_peers.ts";

/** The BGP lab's `waitFor`, with this lab's shorter default timeout. */
export function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 15000,
  everyMs = 200,
): Promise<T> {
  return waitForFixture(what, fn, timeoutMs, everyMs);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One JSON event line printed by the agent. */
export interface AgentEvent {
  event: string;
  [k: string]: unknown;
}

/** The agent process (our sockets) running inside a namespace. */
export class Agent {
  readonly events: AgentEvent[] = [];
  #proc: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #done: Promise<void>;
  stderr = "";

  constructor(proc: Deno.ChildProcess) {
    this.#proc = proc;
    this.#stdin = proc.stdin.getWriter();
    this.#done = Promise.all([this.#pump(), this.#pumpErr()]).then(() => {});
  }

  async #pump(): Promise<void> {
    let buf = "";
    for await (const chunk of this.#proc.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.events.push(JSON.parse(line));
        } catch {
          this.events.push({ event: "text", line });
        }
      }
    }
  }

  async #pumpErr(): Promise<void> {
    for await (const chunk of this.#proc.stderr.pipeThrough(new TextDecoderStream())) this.stderr += chunk;
  }

  /** The first event matching `pred`, waiting up to `timeoutMs`. */
  waitEvent(pred: (e: AgentEvent) => boolean, what: string, timeoutMs = 15000): Promise<AgentEvent> {
    return waitFor(
      `agent event ${what} (events so far: ${JSON.stringify(this.events)}; stderr: ${this.stderr})`,
      () => this.events.find(pred),
      timeoutMs,
      50,
    );
  }

  has(name: string): boolean {
    return this.events.some((e) => e.event === name);
  }

  /** Sends one command line to the agent's stdin. */
  async send(line: string): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(line + "\n"));
  }

  async stop(): Promise<void> {
    try {
      await this.#stdin.close();
    } catch { /* already gone */ }
    const t = setTimeout(() => {
      try {
        this.#proc.kill("SIGKILL");
      } catch { /* exited */ }
    }, 3000);
    await this.#proc.status;
    clearTimeout(t);
    await this.#done;
  }
}

/** A set of namespaces and the daemons inside them, removed together. */
export class Lab {
  readonly id = crypto.randomUUID().slice(0, 6);
  readonly dir: string;
  #ns: string[] = [];
  #procs: Deno.ChildProcess[] = [];
  #agents: Agent[] = [];
  #cleanups: Array<() => Promise<void>> = [];

  constructor() {
    this.dir = Deno.makeTempDirSync({ prefix: "bgt-lab-" });
    Deno.chmodSync(this.dir, 0o777);
  }

  /** Creates namespace `bgt-<tag>-<id>` with loopback up. */
  async ns(tag: string): Promise<string> {
    const name = `bgt-${tag}-${this.id}`;
    await runner.run(["ip", "netns", "add", name]);
    this.#ns.push(name);
    await runner.run(["ip", "-n", name, "link", "set", "lo", "up"]);
    return name;
  }

  /** A veth pair between two namespaces with addresses (CIDR strings) on each end, both up. */
  async link(
    a: string,
    ifA: string,
    addrsA: string[],
    b: string,
    ifB: string,
    addrsB: string[],
  ): Promise<void> {
    const tmpA = `bgt${this.id}${ifA}`.slice(0, 15);
    const tmpB = `bgt${this.id}${ifB}x`.slice(0, 15);
    await runner.run([
      "ip",
      "link",
      "add",
      tmpA,
      "netns",
      a,
      "type",
      "veth",
      "peer",
      "name",
      tmpB,
      "netns",
      b,
    ]);
    await runner.run(["ip", "-n", a, "link", "set", tmpA, "name", ifA]);
    await runner.run(["ip", "-n", b, "link", "set", tmpB, "name", ifB]);
    for (const [ns, ifn, addrs] of [[a, ifA, addrsA], [b, ifB, addrsB]] as const) {
      for (const addr of addrs) {
        await runner.run([
          "ip",
          "-n",
          ns,
          "addr",
          "add",
          addr,
          "dev",
          ifn,
          ...(addr.includes(":") ? ["nodad"] : []),
        ]);
      }
      await runner.run(["ip", "-n", ns, "link", "set", ifn, "up"]);
    }
  }

  /** Runs a command inside `ns` and returns stdout (throws ExecError on failure). */
  async exec(ns: string, argv: string[], okCodes?: number[]): Promise<string> {
    return (await runner.run(argv, { netns: ns, okCodes })).stdout;
  }

  /** Starts a long-running process in `ns`; it is killed by close(). */
  spawn(ns: string, argv: string[], logFile?: string): Deno.ChildProcess {
    const out = logFile ? Deno.openSync(logFile, { write: true, create: true, append: true }) : undefined;
    const p = new Deno.Command("ip", {
      args: ["netns", "exec", ns, ...argv],
      stdin: "null",
      stdout: out ? "piped" : "null",
      stderr: out ? "piped" : "null",
    }).spawn();
    if (out) {
      const w = out.writable;
      p.stdout.pipeTo(w, { preventClose: true }).catch(() => {});
      p.stderr.pipeTo(new WritableStream({ write: (c) => void out.writeSync(c) })).catch(() => {});
      this.#cleanups.push(() => {
        try {
          out.close();
        } catch { /* closed */ }
        return Promise.resolve();
      });
    }
    this.#procs.push(p);
    return p;
  }

  /** Starts BIRD with `config` in `ns`; returns a `birdc` function. */
  async bird(ns: string, name: string, config: string): Promise<(args: string) => Promise<string>> {
    const conf = `${this.dir}/${name}.conf`;
    const ctl = `${this.dir}/${name}.ctl`;
    Deno.writeTextFileSync(conf, config);
    await runner.run(["bird", "-p", "-c", conf]);
    this.spawn(
      ns,
      ["bird", "-f", "-c", conf, "-s", ctl, "-P", `${this.dir}/${name}.pid`],
      `${this.dir}/${name}.log`,
    );
    const birdc = async (args: string) =>
      (await runner.run(["birdc", "-s", ctl, ...args.split(" ")], { netns: ns })).stdout;
    await waitFor(
      `BIRD ${name} control socket`,
      () => birdc("show status").then((s) => s.includes("Daemon is up")),
    );
    return birdc;
  }

  /** Starts gobgpd with `toml` in `ns` (API on 127.0.0.1:`apiPort` inside it); returns a `gobgp` CLI function. */
  async gobgp(
    ns: string,
    name: string,
    toml: string,
    apiPort = 50051,
  ): Promise<(args: string[]) => Promise<string>> {
    const conf = `${this.dir}/${name}.toml`;
    Deno.writeTextFileSync(conf, toml);
    this.spawn(ns, [
      "gobgpd",
      "-f",
      conf,
      "-p",
      "--api-hosts",
      `127.0.0.1:${apiPort}`,
      "--pprof-disable",
    ], `${this.dir}/${name}.log`);
    const cli = async (args: string[]) =>
      (await runner.run(["gobgp", "-u", "127.0.0.1", "-p", String(apiPort), ...args], { netns: ns })).stdout;
    await waitFor(`gobgpd ${name} API`, () => cli(["global"]).then((s) => s.includes("AS")));
    return cli;
  }

  /** Starts an agent script (default: bgp_md5_agent.ts, our sockets) in `ns` with JSON options. */
  agent(ns: string, opts: Record<string, unknown>, scriptName = "bgp_md5_agent.ts"): Agent {
    const script = new URL(`./${scriptName}`, import.meta.url).pathname;
    const p = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns,
        Deno.execPath(),
        "run",
        "--allow-ffi",
        "--allow-net",
        "--allow-read",
        script,
        JSON.stringify(opts),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const a = new Agent(p);
    this.#agents.push(a);
    return a;
  }

  /** Reads a kernel TCP counter (nstat, absolute) in `ns`, e.g. "TcpExtTCPMD5Failure". */
  async counter(ns: string, name: string): Promise<number> {
    const out = await this.exec(ns, ["nstat", "-az", name]);
    const m = new RegExp(`^${name}\\s+(\\d+)`, "m").exec(out);
    return m ? Number(m[1]) : 0;
  }

  registerCleanup(fn: () => Promise<void>): void {
    this.#cleanups.push(fn);
  }

  /** Stops every process and removes every namespace this lab made. */
  async close(): Promise<void> {
    for (const a of this.#agents) await a.stop().catch(() => {});
    for (const p of this.#procs) {
      try {
        p.kill("SIGTERM");
      } catch { /* exited */ }
    }
    for (const p of this.#procs) {
      const t = setTimeout(() => {
        try {
          p.kill("SIGKILL");
        } catch { /* exited */ }
      }, 3000);
      await p.status;
      clearTimeout(t);
    }
    for (const fn of this.#cleanups) await fn().catch(() => {});
    for (const ns of this.#ns) {
      await runner.run(["ip", "netns", "del", ns], { okCodes: [0, 1] }).catch(() => {});
    }
    await sleep(50);
    Deno.removeSync(this.dir, { recursive: true });
  }
}

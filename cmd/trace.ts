/**
 * `kube-router trace FROM TO [--port N] [--protocol tcp|udp|sctp] [--json] [--entry-node NODE]`
 * plus the agent's own flags for where the cluster is (`--manifests`, `--kubeconfig`,
 * `--master`) and for everything the plans depend on (service ranges, overlay, default deny...),
 * so a trace is computed with the options the agents run with.
 *
 * Exit status: 0 the connection is allowed, 1 it is dropped or rejected (or the cluster cannot be
 * read), 2 bad usage.
 *
 * @module
 */
import { ConfigError } from "../errors/mod.ts";
import { walkArgs } from "../options/argv.ts";
import { parseFlags } from "./flag_parse.ts";
import { validateOptions } from "./validate.ts";
import { formatTrace, type Protocol, traceConnection, TraceInputError } from "../controllers/trace/trace.ts";
import { apiSource } from "../watch/api.ts";
import { manifestSource } from "../watch/manifests.ts";

export const TRACE_USAGE = `usage: kube-router trace FROM TO [--port N] [--protocol tcp|udp|sctp] [--json]
                         [--entry-node NODE] [--manifests FILE | --kubeconfig FILE | --master URL] [agent flags]
  FROM  namespace/pod, pod/namespace/name, node/NAME, or an IP (pod, node or outside address)
  TO    namespace/pod, svc/namespace/name, node/NAME, or an IP (pod, Service VIP, node, outside address)
  --port       destination port (default: the Service's first port, else 80)
  --protocol   tcp (default), udp or sctp
  --entry-node the node an outside packet enters (default: the node owning TO, else FROM's node)
  --json       the full report as JSON
Exit status: 0 allowed, 1 dropped or rejected, 2 bad usage.`;

interface TraceArgs {
  from: string;
  to: string;
  port?: number;
  protocol: Protocol;
  json: boolean;
  entryNode?: string;
  rest: string[];
}

/** Splits trace's own arguments from the agent flags it passes on. */
export function parseTraceArgs(argv: readonly string[]): TraceArgs | "help" {
  const pos: string[] = [];
  const rest: string[] = [];
  const out: Partial<TraceArgs> = { protocol: "tcp", json: false };
  const missing = (a: string) => new ConfigError(`trace: ${a} needs a value\n${TRACE_USAGE}`);
  for (const arg of walkArgs(argv, missing)) {
    const a = arg.name;
    const next = () => arg.value();
    switch (a) {
      case "-h":
      case "--help":
        return "help";
      case "--json":
        out.json = true;
        break;
      case "--port": {
        const v = next();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 1 || n > 65535) {
          throw new ConfigError(`trace: --port ${JSON.stringify(v)} is not a port 1-65535`);
        }
        out.port = n;
        break;
      }
      case "--protocol": {
        const v = next().toLowerCase();
        if (v !== "tcp" && v !== "udp" && v !== "sctp") {
          throw new ConfigError(`trace: --protocol ${JSON.stringify(v)}: use tcp, udp or sctp`);
        }
        out.protocol = v;
        break;
      }
      case "--entry-node":
        out.entryNode = next();
        break;
      default:
        if (a.startsWith("-")) {
          rest.push(arg.raw);
          // An agent flag's separate value (`--manifests FILE`); booleans use `--flag=value`.
          const following = arg.peek();
          if (
            arg.inline === undefined && following !== undefined && !following.startsWith("-") && takesValue(a)
          ) {
            rest.push(arg.take());
          }
        } else pos.push(a);
    }
  }
  if (pos.length !== 2) {
    throw new ConfigError(`trace: expected FROM and TO, got ${pos.length} arguments\n${TRACE_USAGE}`);
  }
  return { ...out, from: pos[0], to: pos[1], rest } as TraceArgs;
}

function takesValue(flag: string): boolean {
  try {
    // A boolean flag parses alone; a valued one complains that it needs an argument.
    parseFlags([flag], () => undefined);
    return false;
  } catch {
    return true;
  }
}

export async function runTrace(argv: string[], print: (s: string) => void): Promise<number> {
  const args = parseTraceArgs(argv);
  if (args === "help") {
    print(TRACE_USAGE + "\n");
    return 0;
  }
  const parsed = parseFlags(args.rest, (name) => Deno.env.get(name));
  validateOptions(parsed.options);
  const o = parsed.options;
  const problems: string[] = [];
  const source = o.manifests
    ? await manifestSource(o.manifests, { onProblem: (m) => problems.push(m) })
    : await apiSource({ kubeconfig: o.kubeconfig, master: o.master });
  try {
    await source.ready;
    const snap = source.current();
    let port = args.port;
    if (port === undefined) {
      const svcKey = args.to.replace(/^(svc|service|services)\//, "");
      port = snap.services.get(svcKey)?.ports[0]?.port ?? 80;
    }
    let report;
    try {
      report = traceConnection(snap, o, {
        from: args.from,
        to: args.to,
        port,
        protocol: args.protocol,
        ...(args.entryNode ? { entryNode: args.entryNode } : {}),
      });
    } catch (e) {
      if (e instanceof TraceInputError) throw new ConfigError(`trace: ${e.message}`);
      throw e;
    }
    print(args.json ? JSON.stringify(report, null, 2) + "\n" : formatTrace(report));
    return report.verdict === "allowed" ? 0 : 1;
  } finally {
    await source.close();
  }
}

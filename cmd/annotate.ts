/**
 * `kube-router annotate`: sets and validates the `kube-router.io/*` annotations of nodes and
 * services, so an operator learns about a typo in a peer list before the agent does.
 *
 *   kube-router annotate node NAME KEY=VALUE... [KEY-]... [--overwrite] [--dry-run] [--kubeconfig F]
 *   kube-router annotate service NAME -n NAMESPACE KEY=VALUE... [KEY-]...
 *   kube-router annotate --validate -f FILE     (offline: check every node and service in manifests)
 *
 * Validation is the controllers' own: the resulting object is planned by the router (and, for
 * services, parsed by the proxy), and every problem they would log is an error here. Unknown
 * `kube-router.io/` keys are rejected with the list of known ones. Nothing is written unless
 * every check passes.
 *
 * @module
 */
import "../observe/quiet_node.ts"; // before client-node loads
import * as k8s from "@kubernetes/client-node";
import { parseArgs } from "node:util";
import { ConfigError } from "../errors/mod.ts";
import { defaultOptions } from "../options/mod.ts";
import {
  ANNOTATION as PROXY_ANN,
  parseDsr,
  parseSchedFlags,
  parseScheduler,
} from "../controllers/proxy/annotations.ts";
import { SVC_ANN } from "../controllers/router/advertise.ts";
import { ANN as NODE_ANN, isReservedAsn, parseAsn, problemText } from "../controllers/router/identity.ts";
import { planRouter } from "../controllers/router/plan.ts";
import { loadKubeConfig } from "../watch/client_node_config.ts";
import { nodeFromApi, serviceFromApi } from "../watch/convert.ts";
import { objectsToMaps, parseManifestText } from "../watch/manifests.ts";
import { emptySnapshot, type NodeInfo, type ServiceInfo } from "../watch/types.ts";

export const NODE_KEYS: readonly string[] = Object.values(NODE_ANN);
export const SERVICE_KEYS: readonly string[] = [
  ...new Set([...Object.values(PROXY_ANN), ...Object.values(SVC_ANN)]),
];

const HELP = `Usage:
  kube-router annotate node NAME KEY=VALUE... [KEY-]... [flags]
  kube-router annotate service NAME -n NAMESPACE KEY=VALUE... [KEY-]... [flags]
  kube-router annotate --validate -f FILE

Flags:
  -n, --namespace string   namespace of the service (default "default")
      --overwrite          allow changing an annotation that already has a value
      --dry-run            validate and print the resulting annotations, write nothing
      --kubeconfig string  kubeconfig file
      --master string      API server URL
      --validate           validate the kube-router.io annotations of every node and service in -f FILE
  -f, --filename string    manifests file or directory for --validate

Node keys: ${NODE_KEYS.join(", ")}
Service keys: ${SERVICE_KEYS.join(", ")}
`;

function unknownKeys(annotations: Record<string, string>, known: readonly string[], what: string): string[] {
  return Object.keys(annotations)
    .filter((k) => k.startsWith("kube-router.io/") && !known.includes(k))
    .map((k) => `${what}: unknown annotation ${JSON.stringify(k)}; known keys are ${known.join(", ")}`);
}

/** Every problem the router would report about this node's annotations. */
export function validateNode(input: NodeInfo): string[] {
  const problems = unknownKeys(input.annotations, NODE_KEYS, `node/${input.name}`);
  // The router skips a node without addresses before reading its peer annotations; a node
  // that has not reported addresses yet (a new one) is validated as if it had documentation ones.
  const node = [...input.internalIPs, ...input.externalIPs].length
    ? input
    : { ...input, internalIPs: ["192.0.2.1", "2001:db8::1"] };
  const snapshot = { ...emptySnapshot(), revision: 1, nodes: new Map([[node.name, node]]) };
  // Some keys are read only in one mode (node.asn without full mesh): plan under both, so an
  // annotation is refused if any mode that reads it would.
  const found = new Set<string>();
  for (const nodesFullMesh of [true, false]) {
    const o = { ...defaultOptions(), enableIpv6: true, nodesFullMesh };
    const plan = planRouter({ snapshot, options: o, nodeName: node.name });
    // Only annotation problems: a node without addresses yet is not the annotation's fault.
    for (const p of plan.problems) {
      // ...and only about keys the node has ("missing node.asn" is a mode's requirement, not a typo).
      const keys = p.field.match(/kube-router\.io\/[\w.-]+/g) ?? [];
      if (p.object === `node/${node.name}` && keys.some((k) => k in node.annotations)) {
        found.add(problemText(p));
      }
    }
  }
  problems.push(...found);
  // Stricter than the agent (which follows upstream's ParseUint): a speaker may not use a
  // reserved ASN such as AS_TRANS 23456 as its own (RFC 6793 §9, RFC 7300).
  const asn = input.annotations[NODE_ANN.asn];
  const parsed = asn === undefined ? null : parseAsn(asn);
  if (parsed !== null && isReservedAsn(parsed)) {
    problems.push(
      `node/${input.name}: annotation ${NODE_ANN.asn}: ${asn} is a reserved ASN and cannot be a node's own AS`,
    );
  }
  return problems;
}

/** Every problem the proxy and the router would report about this service's annotations. */
export function validateService(svc: ServiceInfo): string[] {
  const what = `service/${svc.namespace}/${svc.name}`;
  const problems = unknownKeys(svc.annotations, SERVICE_KEYS, what);
  const sched = parseScheduler(svc.annotations);
  for (const r of [sched, parseSchedFlags(svc.annotations, sched.value), parseDsr(svc.annotations)]) {
    if (r.warning) problems.push(`${what}: ${r.warning.field}: ${r.warning.message}`);
  }
  const node: NodeInfo = {
    name: "validator",
    labels: {},
    annotations: {},
    podCIDRs: ["10.244.0.0/24"],
    internalIPs: ["192.0.2.1"],
    externalIPs: [],
    providerID: "",
  };
  const snapshot = {
    ...emptySnapshot(),
    revision: 1,
    nodes: new Map([[node.name, node]]),
    services: new Map([[`${svc.namespace}/${svc.name}`, svc]]),
  };
  const plan = planRouter({ snapshot, options: defaultOptions(), nodeName: node.name });
  problems.push(...plan.problems.filter((p) => p.object === what).map(problemText));
  return problems;
}

/** Parses `KEY=VALUE` and `KEY-` arguments; values may contain `=`. */
export function parseChanges(args: string[]): Map<string, string | null> {
  const changes = new Map<string, string | null>();
  for (const a of args) {
    const eq = a.indexOf("=");
    if (eq > 0) changes.set(a.slice(0, eq), a.slice(eq + 1));
    else if (a.endsWith("-") && a.length > 1) changes.set(a.slice(0, -1), null);
    else {throw new ConfigError(
        `invalid annotation argument ${JSON.stringify(a)}: expected KEY=VALUE or KEY-`,
      );}
  }
  return changes;
}

function applyChanges(
  current: Record<string, string>,
  changes: Map<string, string | null>,
  overwrite: boolean,
  what: string,
): Record<string, string> {
  const next = { ...current };
  for (const [k, v] of changes) {
    if (v === null) delete next[k];
    else {
      if (k in current && current[k] !== v && !overwrite) {
        throw new ConfigError(
          `${what}: annotation ${k} already has the value ${
            JSON.stringify(current[k])
          }; pass --overwrite to change it`,
        );
      }
      next[k] = v;
    }
  }
  return next;
}

export async function runAnnotate(argv: string[], print: (s: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        namespace: { type: "string", short: "n", default: "default" },
        overwrite: { type: "boolean", default: false },
        "dry-run": { type: "boolean", default: false },
        kubeconfig: { type: "string", default: "" },
        master: { type: "string", default: "" },
        validate: { type: "boolean", default: false },
        filename: { type: "string", short: "f", default: "" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    throw new ConfigError(`annotate: ${(e as Error).message}`);
  }
  const v = parsed.values;
  if (v.help) {
    print(HELP);
    return 0;
  }

  if (v.validate) {
    if (!v.filename) throw new ConfigError("annotate --validate needs -f FILE");
    const problems: string[] = [];
    const files = (await Deno.stat(v.filename)).isFile ? [v.filename] : [];
    if (files.length === 0) {
      for await (const e of Deno.readDir(v.filename)) {
        if (/\.(ya?ml|json)$/.test(e.name)) files.push(`${v.filename}/${e.name}`);
      }
    }
    const objects = [];
    for (const f of files.sort()) objects.push(...parseManifestText(await Deno.readTextFile(f), f));
    const maps = objectsToMaps(objects, (m) => problems.push(m));
    for (const n of maps.get("Node")!.values()) problems.push(...validateNode(n as NodeInfo));
    for (const s of maps.get("Service")!.values()) problems.push(...validateService(s as ServiceInfo));
    if (problems.length) throw new ConfigError(problems);
    print(
      `ok: ${maps.get("Node")!.size} nodes and ${
        maps.get("Service")!.size
      } services have valid kube-router.io annotations\n`,
    );
    return 0;
  }

  const [kind, name, ...rest] = parsed.positionals;
  if (!["node", "service", "svc", "nodes", "services"].includes(kind ?? "") || !name) {
    throw new ConfigError(
      `annotate: expected "node NAME" or "service NAME" followed by KEY=VALUE or KEY- (see annotate --help)`,
    );
  }
  const changes = parseChanges(rest);
  if (changes.size === 0) throw new ConfigError("annotate: no KEY=VALUE or KEY- given");
  const isNode = kind.startsWith("node");
  const kc = loadKubeConfig({ kubeconfig: v.kubeconfig || Deno.env.get("KUBECONFIG"), master: v.master });
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const what = isNode ? `node/${name}` : `service/${v.namespace}/${name}`;
  let obj;
  try {
    obj = isNode
      ? await core.readNode({ name })
      : await core.readNamespacedService({ name, namespace: v.namespace! });
  } catch (e) {
    const code = (e as { code?: number }).code;
    throw new Error(
      `${what}: cannot read it from the API${code ? ` (HTTP ${code})` : ""}: ${
        (e as Error).message.split("\n")[0]
      }`,
    );
  }
  const annotations = applyChanges(obj.metadata?.annotations ?? {}, changes, v.overwrite!, what);
  const candidate = { ...obj, kind: isNode ? "Node" : "Service", metadata: { ...obj.metadata, annotations } };
  const problems = isNode ? validateNode(nodeFromApi(candidate)) : validateService(serviceFromApi(candidate));
  if (problems.length) throw new ConfigError(problems);

  const patchAnnotations = Object.fromEntries([...changes].map(([k, val]) => [k, val]));
  if (v["dry-run"]) {
    print(`${what} (dry run, not written):\n${JSON.stringify(annotations, null, 2)}\n`);
    return 0;
  }
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  await objects.patch(
    {
      apiVersion: "v1",
      kind: isNode ? "Node" : "Service",
      metadata: {
        name,
        ...(isNode ? {} : { namespace: v.namespace }),
        annotations: patchAnnotations as Record<string, string>,
      },
    },
    undefined,
    undefined,
    "kube-router",
    undefined,
    k8s.PatchStrategy.MergePatch,
  );
  print(`${what} annotated\n`);
  return 0;
}

/**
 * Pod sandbox network namespaces from the container runtime, through `crictl` (the CRI's own
 * command-line client, which speaks the CRI gRPC API over `--runtime-endpoint`). Upstream
 * kube-router calls the CRI directly for a container's PID; we read the same answer from
 * `crictl pods -o json` (sandbox id by pod name and namespace) and `crictl inspectp -o json`
 * (containerd reports `info.runtimeSpec.linux.namespaces[type=network].path`, CRI-O and others
 * `info.pid`, whose `/proc/<pid>/ns/net` is the same namespace).
 *
 * The JSON shapes are verified against hand-written samples that follow crictl's documented
 * output (`tests/fixtures/cri_samples/`, **not captured from a runtime**: none runs here).
 *
 * @module
 */
import type { Runner } from "../exec.ts";

/** A ready pod sandbox as `crictl pods -o json` lists it. */
export interface Sandbox {
  id: string;
  name: string;
  namespace: string;
  uid: string;
}

interface PodsJson {
  items?: Array<{
    id?: string;
    state?: string;
    metadata?: { name?: string; namespace?: string; uid?: string };
  }>;
}

/** Parses `crictl pods -o json`: ready sandboxes only (a pod's older, stopped sandboxes are skipped). */
export function parsePods(json: string): Sandbox[] {
  const doc = JSON.parse(json || "{}") as PodsJson;
  const out: Sandbox[] = [];
  for (const it of doc.items ?? []) {
    if (!it.id || it.state !== "SANDBOX_READY") continue;
    out.push({
      id: it.id,
      name: it.metadata?.name ?? "",
      namespace: it.metadata?.namespace ?? "",
      uid: it.metadata?.uid ?? "",
    });
  }
  return out;
}

interface InspectpJson {
  info?: {
    pid?: number;
    runtimeSpec?: { linux?: { namespaces?: Array<{ type?: string; path?: string }> } };
  };
}

/**
 * The network namespace path of one sandbox from `crictl inspectp -o json <id>`: the runtime
 * spec's network namespace path when it names one, else `/proc/<pid>/ns/net`.
 */
export function parseInspectpNetns(json: string): string | undefined {
  const doc = JSON.parse(json || "{}") as InspectpJson;
  const ns = doc.info?.runtimeSpec?.linux?.namespaces?.find((n) => n.type === "network");
  if (ns?.path) return ns.path;
  const pid = doc.info?.pid;
  return typeof pid === "number" && pid > 0 ? `/proc/${pid}/ns/net` : undefined;
}

/** `crictl` argv prefix with the endpoint (`unix://` added to a bare socket path). */
export function crictlArgv(runtimeEndpoint: string, ...args: string[]): string[] {
  const ep = runtimeEndpoint.includes("://") ? runtimeEndpoint : `unix://${runtimeEndpoint}`;
  return ["crictl", "--runtime-endpoint", ep, "--timeout", "5s", ...args];
}

/** Ready sandboxes of the runtime: one `crictl pods` process. */
export async function listSandboxes(runner: Runner, runtimeEndpoint: string): Promise<Sandbox[]> {
  const r = await runner.run(crictlArgv(runtimeEndpoint, "pods", "-o", "json"), { readOnly: true });
  return parsePods(r.stdout);
}

/** The network namespace path of one sandbox, or undefined when the runtime does not say. */
export async function sandboxNetns(
  runner: Runner,
  runtimeEndpoint: string,
  id: string,
): Promise<string | undefined> {
  const r = await runner.run(crictlArgv(runtimeEndpoint, "inspectp", "-o", "json", id), { readOnly: true });
  return parseInspectpNetns(r.stdout);
}

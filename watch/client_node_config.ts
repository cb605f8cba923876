/**
 * A `@kubernetes/client-node` `KubeConfig`, for the two places that write through client-node's
 * typed APIs: `kube-router annotate` and the LoadBalancer allocator's Lease and status writes.
 * Loaded only by them (the watchers use `kube/`), because importing client-node costs the agent
 * about 75 MB of resident memory.
 *
 * @module
 */
import * as k8s from "@kubernetes/client-node";
import { ConfigError } from "../errors/mod.ts";

/** Loads client configuration the way upstream does: --master over --kubeconfig over in-cluster. */
export function loadKubeConfig(opts: { kubeconfig?: string; master?: string }): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  try {
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else if (Deno.env.get("KUBERNETES_SERVICE_HOST")) kc.loadFromCluster();
    else if (opts.master) {
      kc.loadFromClusterAndUser({ name: "master", server: opts.master, skipTLSVerify: false }, {
        name: "anonymous",
      });
    } else {
      throw new Error(
        "no --kubeconfig, no --master and not running in a cluster (KUBERNETES_SERVICE_HOST unset)",
      );
    }
  } catch (e) {
    throw new ConfigError(`cannot load Kubernetes client configuration: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (opts.master) {
    const cluster = kc.getCurrentCluster();
    if (cluster) {
      kc.clusters = kc.clusters.map((c) => c.name === cluster.name ? { ...c, server: opts.master! } : c);
    }
  }
  return kc;
}

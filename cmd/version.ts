/** The agent's version, printed by `version` and exported as `kube_router_build_info`. */
export const VERSION = "v0.1.0-deno";

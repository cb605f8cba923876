/**
 * `--help`: every flag with its type and default, grouped by controller, in pflag's layout so
 * it reads like upstream's usage text.
 *
 * @module
 */
import { type FlagGroup, FLAGS, type FlagSpec } from "../options/flag_table.ts";
import { formatGoDuration } from "../options/go_text.ts";
import { VERSION } from "./version.ts";

const GROUP_TITLES: Record<FlagGroup, string> = {
  general: "General flags",
  proxy: "Service proxy flags (kube-router proxy)",
  firewall: "Network policy flags (kube-router firewall)",
  router: "Routing and BGP flags (kube-router router)",
  loadbalancer: "LoadBalancer allocator flags",
  agent: "Flags of this agent (not in upstream)",
};

const TYPE_NAMES: Record<FlagSpec["type"], string> = {
  bool: "",
  string: "string",
  duration: "duration",
  uint: "uint",
  uint8: "uint8",
  uint16: "uint16",
  uint32: "uint32",
  stringSlice: "strings",
  ipSlice: "ipSlice",
  uintSlice: "uints",
};

function formatDefault(spec: FlagSpec): string {
  const d = spec.default;
  // pflag prints no default for a zero value; upstream's help texts spell "(default: 0s)" themselves.
  if (spec.type === "duration") return d === 0 ? "" : formatGoDuration(d as number);
  if (Array.isArray(d)) return d.length ? `[${d.join(",")}]` : "";
  if (spec.type === "string") return d === "" ? "" : `"${d}"`;
  if (spec.type === "bool") return d ? "true" : "";
  return d === 0 ? "" : String(d);
}

export function usage(): string {
  const out = [
    `kube-router ${VERSION}: Kubernetes networking agent (service proxy, network policy, BGP pod routing).`,
    "",
    "Usage:",
    "  kube-router [run] [flags]     run every enabled controller (the default)",
    "  kube-router proxy [flags]     run only the service proxy",
    "  kube-router firewall [flags]  run only the network policy firewall",
    "  kube-router router [flags]    run only the routing controller",
    "  kube-router cleanup [flags]   remove everything kube-router programmed, then exit",
    "  kube-router annotate ...      set and validate kube-router.io/* annotations (see `annotate --help`)",
    "  kube-router bgp peers|routes  show the BGP speaker's peers and routes (see `bgp --help`)",
    "  kube-router trace FROM TO     which policies, rules, backends and routes a connection meets (see `trace --help`)",
    "  kube-router version | help",
    "",
  ];
  for (const group of Object.keys(GROUP_TITLES) as FlagGroup[]) {
    out.push(`${GROUP_TITLES[group]}:`);
    const rows = (FLAGS as readonly FlagSpec[]).filter((f) => f.group === group).map((f) => {
      const left = `${f.shorthand ? `-${f.shorthand}, ` : "    "}--${f.name}${
        TYPE_NAMES[f.type] ? ` ${TYPE_NAMES[f.type]}` : ""
      }`;
      const def = formatDefault(f);
      return [left, `${f.help}${def ? ` (default ${def})` : ""}${f.env ? ` [env ${f.env}]` : ""}`];
    });
    const width = Math.max(...rows.map(([l]) => l.length)) + 3;
    for (const [l, r] of rows) out.push(`  ${l.padEnd(width)}${r}`);
    out.push("");
  }
  return out.join("\n");
}

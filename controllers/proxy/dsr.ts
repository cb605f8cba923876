/**
 * DSR (`kube-router.io/service.dsr=tunnel`), the parts outside IPVS and iptables:
 *
 * - Director: `ip rule fwmark <mark> lookup 78 priority 32764` per DSR mark and a `local default
 *   dev lo` route in table 78 (see `kernel/ip/fwmark_rule.ts`), so marked packets for a VIP held
 *   by no interface reach the IPVS fwmark service.
 * - Pod side: inside the network namespace of each LOCAL endpoint pod of a DSR service, an ipip
 *   link `kube-tunnel-if` (IPv6: ip6tnl `kube-tunnel-v6`) with local = pod IP, up, holding the
 *   VIP, and `rp_filter=0` on it, `eth0` and `all`; so the pod accepts IPVS's IPIP packets and
 *   answers the client directly from the VIP. ONE process per pod: `nsenter --net=<ns> sh -c
 *   'ip -batch - && sysctl -q -w ...'`, after one read (`ip -j addr show`) of the pod's links.
 *
 * Finding the pod's namespace (upstream asks the CRI for a container PID):
 * 1. with `--runtime-endpoint`: the CRI over gRPC (`kernel/cri`): `ListPodSandbox` → the pod's
 *    ready sandbox → verbose `PodSandboxStatus` → netns path (or `/proc/<pid>/ns/net`);
 * 2. otherwise, or when the runtime is unreachable or does not know the pod: scan
 *    `/proc/<pid>/ns/net` and take the one namespace whose addresses include the pod IP
 *    (`kernel/netns`);
 * 3. not found (or several namespaces hold the IP): logged with the pod's name, pod skipped, retried
 *    at the next periodic verification.
 *
 * @module
 */
import { ExecError, onPath, type Runner } from "../../kernel/exec.ts";
import { CriClient } from "../../kernel/cri/mod.ts";
import {
  applyDsrRouting,
  type DsrRouting,
  readDsrRouting,
  renderDsrRouting,
} from "../../kernel/ip/fwmark_rule.ts";
import { parseAddresses } from "../../kernel/ip/address.ts";
import { hostProcFs, NetnsIndex, type ProcFs, scanNetns } from "../../kernel/netns/mod.ts";
import type { Family } from "./ip.ts";
import type { ProxyPlan } from "./types.ts";

/** Tunnel link names inside endpoint pods (upstream's). */
export const TUNNEL_IF: Record<Family, string> = { 4: "kube-tunnel-if", 6: "kube-tunnel-v6" };

/** One local endpoint pod of DSR services, and the VIPs it must answer for. */
export interface DsrPodTarget {
  /** "namespace/name" (or the endpoint IP when the slice names no pod). */
  pod: string;
  podIp: string;
  family: Family;
  /** Sorted, unique. */
  vips: string[];
}

/** The local endpoint pods of DSR (fwmark) services. Pure. */
export function dsrPodTargets(plan: ProxyPlan): DsrPodTarget[] {
  const by = new Map<string, DsrPodTarget>();
  for (const vs of plan.services) {
    if (!vs.fwmark) continue;
    for (const r of vs.realServers) {
      if (!r.local) continue;
      const key = `${r.pod}|${r.ip}`;
      const t = by.get(key) ?? { pod: r.pod || r.ip, podIp: r.ip, family: vs.family, vips: [] };
      if (!t.vips.includes(vs.vip)) t.vips.push(vs.vip);
      by.set(key, t);
    }
  }
  return [...by.values()].map((t) => ({ ...t, vips: t.vips.sort() })).sort((a, b) =>
    a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : a.podIp < b.podIp ? -1 : 1
  );
}

/** The tunnel link as read inside the pod. */
export interface TunnelState {
  exists: boolean;
  up: boolean;
  /** "ip/len" on the tunnel link. */
  addrs: string[];
}

/** Reads the tunnel link's state from `ip -j addr show` run inside the pod. Pure. */
export function parseTunnelState(json: string, family: Family): TunnelState {
  const text = json.trim();
  if (!text) return { exists: false, up: false, addrs: [] };
  const rows = JSON.parse(text) as Array<{ ifname: string; flags?: string[] }>;
  const row = rows.find((r) => r.ifname === TUNNEL_IF[family]);
  if (!row) return { exists: false, up: false, addrs: [] };
  const addrs = parseAddresses(text).filter((a) => a.dev === TUNNEL_IF[family]).map((a) =>
    `${a.ip}/${a.prefixlen}`
  );
  return { exists: true, up: (row.flags ?? []).includes("UP"), addrs };
}

/**
 * `ip -batch` lines making the pod's tunnel match the target: create (when missing), up, add the
 * VIPs, remove VIPs no longer served. Pure.
 */
export function renderTunnelLines(t: DsrPodTarget, have: TunnelState): string[] {
  const dev = TUNNEL_IF[t.family];
  const len = t.family === 4 ? 32 : 128;
  const lines: string[] = [];
  if (!have.exists) {
    lines.push(
      t.family === 4
        ? `link add name ${dev} type ipip local ${t.podIp}`
        : `link add name ${dev} type ip6tnl local ${t.podIp} mode ip6ip6`,
    );
  }
  if (!have.up) lines.push(`link set ${dev} up`);
  const want = new Set(t.vips.map((v) => `${v}/${len}`));
  for (const a of t.vips.map((v) => `${v}/${len}`)) {
    if (!have.addrs.includes(a)) lines.push(`addr add ${a} dev ${dev}`);
  }
  for (const a of have.addrs) if (!want.has(a)) lines.push(`addr del ${a} dev ${dev}`);
  return lines;
}

/** rp_filter keys set to 0 inside the pod (IPv4 only: IPv6 has no rp_filter). Pure. */
export function podSysctls(t: DsrPodTarget): string[] {
  if (t.family !== 4) return [];
  return [TUNNEL_IF[4], "eth0", "all"].map((d) => `net.ipv4.conf.${d}.rp_filter=0`);
}

/** The tools `podCommand`'s shell runs, by full path in the agent (see `onPath`). */
export interface PodTools {
  ip: string;
  sysctl: string;
}

/**
 * The one command run inside the pod: its `ip -batch` lines go to stdin; the sysctls follow only
 * when the batch succeeded. The shell is the agent's own, so the tools go to it by full path: a
 * busybox `sh` runs its own applet for a bare `ip`, which knows no `-batch`. Pure.
 */
export function podCommand(
  netnsPath: string,
  t: DsrPodTarget,
  lines: readonly string[],
  tools: PodTools = { ip: "ip", sysctl: "sysctl" },
): {
  argv: string[];
  stdin: string;
} {
  const sysctls = podSysctls(t);
  const ip = shellWord(tools.ip), sysctl = shellWord(tools.sysctl);
  const script = sysctls.length ? `${ip} -batch - && ${sysctl} -q -w "$@"` : `${ip} -batch -`;
  return {
    argv: ["nsenter", `--net=${netnsPath}`, "sh", "-c", script, "kube-router-dsr", ...sysctls],
    stdin: lines.join("\n") + "\n",
  };
}

/** `w` as one shell word: as it is when plain, else single-quoted. */
function shellWord(w: string): string {
  return /^[A-Za-z0-9/._+-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`;
}

/** Logs the applier needs. */
export interface DsrLog {
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
}

export interface DsrApplierOptions {
  families: readonly Family[];
  /** `--runtime-endpoint` ("" = none: /proc scan only). */
  runtimeEndpoint: string;
  log: DsrLog;
  procfs?: ProcFs;
}

/** Applies the director's policy routing and the pods' tunnels; remembers what it did. */
export class DsrApplier {
  #routing = new Map<Family, string>();
  /** pod key → desired state applied (or failed) for it, so an unchanged sync runs nothing. */
  #pods = new Map<string, string>();
  #warned = new Set<string>();
  #cri?: CriClient;

  constructor(private readonly runner: Runner, private readonly o: DsrApplierOptions) {}

  /** Closes the CRI connection. */
  close(): void {
    this.#cri?.close();
    this.#cri = undefined;
  }

  #warnOnce(msg: string): void {
    if (this.#warned.has(msg)) return;
    if (this.#warned.size > 1000) this.#warned.clear();
    this.#warned.add(msg);
    this.o.log.warn(msg);
  }

  /** Forgets what was applied (the next apply re-reads). */
  invalidate(): void {
    this.#routing.clear();
    this.#pods.clear();
  }

  /** Applies both halves; returns the steps that ran a mutating command. */
  async apply(plan: ProxyPlan, verify: boolean): Promise<string[]> {
    if (verify) this.invalidate();
    const ran: string[] = [];
    for (const f of this.o.families) {
      const marks = [...new Set(plan.dsrMarks.filter((m) => m.family === f).map((m) => m.fwmark))];
      marks.sort((a, b) => a - b);
      const want: DsrRouting = { marks, localRoute: marks.length > 0 };
      const key = JSON.stringify(want);
      if (this.#routing.get(f) === key) continue;
      const have = await readDsrRouting(this.runner, f);
      // The table-78 route is ours: it goes with the last mark.
      if (await applyDsrRouting(this.runner, f, renderDsrRouting(have, want))) ran.push(`dsr-rules-v${f}`);
      this.#routing.set(f, key);
    }
    const targets = dsrPodTargets(plan);
    const pending = targets.filter((t) => this.#pods.get(`${t.pod}|${t.podIp}`) !== JSON.stringify(t.vips));
    const live = new Set(targets.map((t) => `${t.pod}|${t.podIp}`));
    for (const k of [...this.#pods.keys()]) if (!live.has(k)) this.#pods.delete(k);
    if (pending.length === 0) return ran;

    const paths = await this.#locate(pending);
    for (const t of pending) {
      const key = `${t.pod}|${t.podIp}`;
      const path = paths.get(key);
      if (!path) continue; // logged by #locate; retried later
      try {
        if (await this.#applyPod(t, path)) ran.push(`dsr-pod ${t.pod}`);
      } catch (e) {
        const line = e instanceof ExecError && e.offendingLine
          ? ` at ${JSON.stringify(e.offendingLine.text)}`
          : "";
        this.o.log.error(
          `DSR: pod ${t.pod} (${t.podIp}): setting up ${TUNNEL_IF[t.family]} failed${line}: ${
            (e as Error).message
          }; pod skipped until the next verification`,
        );
      }
      // Failed pods are remembered too: retried at the next verification, not on every event.
      this.#pods.set(key, JSON.stringify(t.vips));
    }
    return ran;
  }

  async #applyPod(t: DsrPodTarget, path: string): Promise<boolean> {
    const read = await this.runner.run(["nsenter", `--net=${path}`, "ip", "-j", "addr", "show"], {
      readOnly: true,
    });
    const lines = renderTunnelLines(t, parseTunnelState(read.stdout, t.family));
    if (lines.length === 0) return false;
    const cmd = podCommand(path, t, lines, { ip: onPath("ip"), sysctl: onPath("sysctl") });
    await this.runner.run(cmd.argv, { stdin: cmd.stdin });
    return true;
  }

  /** Network namespace path per pod key; pods not found are logged with their name. */
  async #locate(targets: DsrPodTarget[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (this.o.runtimeEndpoint) {
      try {
        this.#cri ??= new CriClient(this.o.runtimeEndpoint);
        const sandboxes = (await this.#cri.listSandboxes()).filter((s) => s.ready);
        for (const t of targets) {
          const [ns, name] = t.pod.split("/");
          const sb = sandboxes.find((s) => s.namespace === ns && s.name === name);
          if (!sb) continue;
          const path = await this.#cri.sandboxNetns(sb.id);
          if (path) out.set(`${t.pod}|${t.podIp}`, path);
        }
      } catch (e) {
        // Runtime down or restarting: /proc this time, the CRI again next time.
        this.#cri?.close();
        this.#cri = undefined;
        this.#warnOnce(
          `DSR: CRI at --runtime-endpoint ${this.o.runtimeEndpoint} failed (${
            (e as Error).message
          }); finding pod namespaces through /proc`,
        );
      }
    }
    const rest = targets.filter((t) => !out.has(`${t.pod}|${t.podIp}`));
    if (rest.length === 0) return out;
    const index = new NetnsIndex(await scanNetns(this.o.procfs ?? hostProcFs()));
    for (const t of rest) {
      const r = index.lookup(t.podIp);
      if (r.found) {
        out.set(`${t.pod}|${t.podIp}`, r.found.path);
        continue;
      }
      const why = r.reason === "absent"
        ? "no process's network namespace holds it"
        : `${r.candidates.length} network namespaces hold it (${r.candidates.map((c) => c.id).join(", ")})`;
      this.#warnOnce(`DSR: network namespace of pod ${t.pod} (${t.podIp}) not found: ${why}; pod skipped`);
    }
    return out;
  }
}

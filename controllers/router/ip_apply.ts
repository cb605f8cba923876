/**
 * Applies a `KernelPlan` (learned routes, overlay neighbours/FDB, tunnels, table-77 rules):
 * one `bridge -batch` for FDB entries and one `ip -batch` for everything else, computed as a
 * diff against what was last applied (event path) or against what the kernel reports (periodic
 * repair and first run). Nothing runs when nothing differs.
 *
 * @module
 */
import { ExecError, type Runner } from "../../kernel/exec.ts";
import {
  bridgeBatch,
  diffRoutes,
  diffRules,
  type FdbEntry,
  ipBatch,
  ipRead,
  type LinkInfo,
  listLinksArgv,
  listRulesArgv,
  type Neighbour,
  OVERLAY_TABLE,
  parseFdb,
  parseLinks,
  parseNeighbours,
  parseRules,
  readOurRoutes,
  renderFdbDel,
  renderFdbReplace,
  renderFouAdd,
  renderLinkDel,
  renderLinkUp,
  renderNeighDel,
  renderNeighReplace,
  renderRouteDel,
  renderRouteReplace,
  renderRuleAdd,
  renderRuleDel,
  renderTunnelAdd,
  type Route,
  routeKey,
  type RouteOp,
  type RouteWriteResult,
  type Rule,
  writeRoutes,
} from "../../kernel/ip/mod.ts";
import { isOurLink, type KernelPlan, VXLAN_DEV } from "./routes.ts";

/** What we believe the kernel holds of ours. */
export interface KernelState {
  routes: Route[];
  neighbours: Neighbour[];
  fdb: FdbEntry[];
  rules: Rule[];
  tunnels: string[];
  /**
   * What each tunnel in `tunnels` is (`tunnelSignature`), when read from the kernel or applied: a
   * tunnel whose encapsulation, port or ends differ from the plan is recreated (an agent restarted
   * from `ipip` to `fou` found its ipip tunnels under the same names: found by the overlay VM suite).
   */
  tunnelSpecs?: Record<string, string>;
  /** FoU receive ports present (`ip fou show`), read only with `--overlay-encap=fou`. */
  fouPorts?: string[];
}

/** Reads our state from the kernel. */
/** Runners that already tried `modprobe fou` (once is enough: a kernel without it stays without). */
const fouLoadTried = new WeakSet<Runner>();

export async function readKernelState(
  runner: Runner,
  families: ReadonlyArray<4 | 6>,
  opts: { fou?: boolean } = {},
): Promise<KernelState> {
  const links = parseLinks(await ipRead(runner, listLinksArgv()));
  const hasVx = links.some((l) => l.name === VXLAN_DEV);
  const routes = await readOurRoutes(runner, families);
  const neighbours = hasVx
    ? parseNeighbours(await ipRead(runner, ["ip", "-j", "neigh", "show", "dev", VXLAN_DEV]), VXLAN_DEV)
    : [];
  const fdb = hasVx
    ? parseFdb(await ipRead(runner, ["bridge", "-j", "fdb", "show", "dev", VXLAN_DEV]), VXLAN_DEV)
    : [];
  const rules: Rule[] = [];
  for (const f of families) rules.push(...parseRules(await ipRead(runner, listRulesArgv(f))));
  const fouPorts: string[] = [];
  if (opts.fou) {
    const readFou = (f: 4 | 6) => ipRead(runner, ["ip", `-${f}`, "-j", "fou", "show"]);
    for (const f of families) {
      let out = await readFou(f).catch(() => undefined);
      if (out === undefined && !fouLoadTried.has(runner)) {
        fouLoadTried.add(runner);
        // The fou module declares no generic-netlink alias (Debian's 6.1), so nothing loads it on
        // demand and `ip fou add` would fail too (found by the overlay VM suite): load it, read
        // again. On a kernel without fou both fail: read as none.
        await runner.run(["modprobe", "fou"], { okCodes: [0, 1] }).catch(() => {});
        out = await readFou(f).catch(() => "");
      }
      out ??= "";
      const rows = out.trim() ? JSON.parse(out) as Array<{ port: number }> : [];
      for (const r of rows) fouPorts.push(`${r.port}/${f}`);
    }
  }
  return {
    fouPorts,
    routes,
    neighbours,
    fdb,
    rules: rules.filter((r) => r.table === OVERLAY_TABLE),
    tunnels: links.filter((l) => isOurLink(l.name) && l.name !== VXLAN_DEV).map((l) => l.name),
    tunnelSpecs: Object.fromEntries(
      links.filter((l) => isOurLink(l.name) && l.name !== VXLAN_DEV).map((
        l,
      ) => [l.name, linkTunnelSignature(l)]),
    ),
  };
}

/** A tunnel's identity for comparison: encapsulation (with FoU's port) and both ends. */
export function tunnelSignature(
  t: { encap: "ipip" | "fou"; encapPort: number; remote: string; local: string },
): string {
  return `${t.encap === "fou" ? `fou:${t.encapPort}` : "ipip"} ${t.remote} ${t.local}`;
}

/**
 * The same from `ip -d -j link`: ipip/ip6tnl `info_data` has `encap: {type: "gue"|"fou", dport}` when
 * encapsulated (iproute2 prints no `encap` object for plain IPIP).
 */
export function linkTunnelSignature(l: LinkInfo): string {
  const d = l.data as { remote?: string; local?: string; encap?: { type?: string; dport?: number } };
  const fou = d.encap?.type === "gue" || d.encap?.type === "fou";
  return tunnelSignature({
    encap: fou ? "fou" : "ipip",
    encapPort: Number(d.encap?.dport ?? 0),
    remote: d.remote ?? "",
    local: d.local ?? "",
  });
}

const nKey = (n: Neighbour) => `${n.dev}|${n.ip}`;
const fKey = (f: FdbEntry) => `${f.dev}|${f.mac}|${f.dst}`;

/** The steps that move `cur` to `want`: ip lines before the routes, route ops, ip lines after, FDB lines. */
export interface KernelSteps {
  pre: string[];
  routes: RouteOp[];
  post: string[];
  bridge: string[];
}

/** The steps that move `cur` to `want` (pure). `keepStale` leaves extra routes in place. */
export function kernelSteps(want: KernelPlan, cur: KernelState, keepStale = false): KernelSteps {
  const pre: string[] = [];
  const post: string[] = [];
  const routes: RouteOp[] = [];
  const bridge: string[] = [];
  // Tunnels first (routes reference them); a FoU tunnel needs the GUE receive port first.
  const haveT = new Set(cur.tunnels);
  const fou = new Set(cur.fouPorts ?? []);
  // Tunnels that exist under the right name but are something else: deleted and added again, and
  // the routes through them rewritten (deleting a link takes its routes with it).
  const recreated = new Set<string>();
  for (const t of want.tunnels) {
    const v6 = t.remote.includes(":");
    const key = `${t.encapPort}/${v6 ? 6 : 4}`;
    // The receive port is checked whether or not the tunnel is new: a tunnel can outlive its port.
    if (t.encap === "fou" && !fou.has(key)) {
      pre.push(renderFouAdd(t.encapPort, v6));
      fou.add(key);
    }
    const have = cur.tunnelSpecs?.[t.name];
    if (haveT.has(t.name) && have !== undefined && have !== tunnelSignature(t)) {
      pre.push(renderLinkDel(t.name));
      recreated.add(t.name);
    }
    if (!haveT.has(t.name) || recreated.has(t.name)) pre.push(renderTunnelAdd(t), renderLinkUp(t.name));
  }
  // FDB and neighbours for the VXLAN overlay.
  const wantF = new Map(want.fdb.map((f) => [fKey(f), f]));
  const haveF = new Map(cur.fdb.map((f) => [fKey(f), f]));
  for (const [k, f] of wantF) if (!haveF.has(k)) bridge.push(renderFdbReplace(f));
  // Under keepStale the FDB entries and neighbours of kept routes must stay too, or the stale
  // routes would blackhole (found by the GR restart e2e test).
  if (!keepStale) { for (const [k, f] of haveF) if (!wantF.has(k)) bridge.push(renderFdbDel(f)); }
  const wantN = new Map(want.neighbours.map((n) => [nKey(n), n]));
  const haveN = new Map(cur.neighbours.map((n) => [nKey(n), n]));
  for (const [k, n] of wantN) if (haveN.get(k)?.mac !== n.mac) pre.push(renderNeighReplace(n));
  // Loops, not push(...spread): a spread of a 1M-element array overflows the call stack.
  const d = diffRoutes(
    want.routes,
    recreated.size === 0 ? cur.routes : cur.routes.filter((r) => !r.dev || !recreated.has(r.dev)),
  );
  if (!keepStale) { for (const route of d.remove) routes.push({ del: true, route }); }
  for (const route of d.replace) routes.push({ del: false, route });
  const rd = diffRules(want.rules, cur.rules, new Set([OVERLAY_TABLE]));
  for (const r of rd.add) post.push(renderRuleAdd(r));
  for (const r of rd.remove) post.push(renderRuleDel(r));
  if (!keepStale) {
    for (const [k, n] of haveN) if (!wantN.has(k)) post.push(renderNeighDel(n));
    const wantT = new Set(want.tunnels.map((t) => t.name));
    for (const t of cur.tunnels) if (!wantT.has(t)) post.push(renderLinkDel(t));
  }
  return { pre, routes, post, bridge };
}

/** The same steps as `ip -batch` / `bridge -batch` lines (what `--dry-run` prints; tests). */
export function kernelBatches(
  want: KernelPlan,
  cur: KernelState,
  keepStale = false,
): { ip: string[]; bridge: string[] } {
  const s = kernelSteps(want, cur, keepStale);
  const ip = s.pre.slice();
  for (const op of s.routes) ip.push(op.del ? renderRouteDel(op.route) : renderRouteReplace(op.route));
  for (const l of s.post) ip.push(l);
  return { ip, bridge: s.bridge };
}

/** A line `ip -batch` or `bridge -batch` refused, and the tool's message. */
export interface RefusedLine {
  line: string;
  error: string;
}

/**
 * Runs a batch whose lines are independent enough to contain a refusal: `ip -batch` stops at the
 * first line it refuses (the lines before it ran), so the refused line is recorded and the batch
 * goes on from the line after it. An error that names no line propagates.
 */
export async function batchContained(
  run: (lines: readonly string[]) => Promise<unknown>,
  lines: readonly string[],
  refused: RefusedLine[],
): Promise<void> {
  let rest = lines;
  while (rest.length > 0) {
    try {
      await run(rest);
      return;
    } catch (e) {
      const n = e instanceof ExecError ? e.offendingLine?.number : undefined;
      if (n === undefined || n > rest.length) throw e;
      const stderr = (e as ExecError).stderr.trim().split("\n").filter((l) => !/^Command failed/.test(l));
      refused.push({ line: rest[n - 1], error: stderr.at(-1) ?? (e as Error).message });
      rest = rest.slice(n);
    }
  }
}

/**
 * Applies the plan and returns the new believed state. Routes go through `writeRoutes` (netlink
 * when the runner has it); a route the kernel refuses is reported in `failed` and left out of the
 * state, the rest are applied. A tunnel, neighbour or FDB line the kernel refuses is reported in
 * `refusedLines` and left out of the state (retried by the next pass), the rest are applied.
 * Other failures propagate and the caller re-reads the kernel.
 */
export async function applyKernelPlan(
  runner: Runner,
  want: KernelPlan,
  cur: KernelState,
  keepStale = false,
): Promise<{
  state: KernelState;
  lines: number;
  failed: RouteWriteResult["failed"];
  refusedLines: RefusedLine[];
}> {
  const s = kernelSteps(want, cur, keepStale);
  const refusedLines: RefusedLine[] = [];
  // FDB before neighbours/routes so the first packet already finds its VTEP.
  await batchContained((l) => bridgeBatch(runner, l), s.bridge, refusedLines);
  await batchContained((l) => ipBatch(runner, l), s.pre, refusedLines);
  const w = await writeRoutes(runner, s.routes);
  await batchContained((l) => ipBatch(runner, l), s.post, refusedLines);
  let routes = keepStale ? mergeRoutes(want.routes, cur.routes) : want.routes;
  if (w.failed.length > 0) {
    const bad = new Set(w.failed.filter((f) => !f.op.del).map((f) => routeKey(f.op.route)));
    routes = routes.filter((r) => !bad.has(routeKey(r)));
  }
  // What a refused line was to create is not believed present (the next full pass retries it).
  const notMade = new Set<string>();
  for (const r of refusedLines) {
    const m = /^(?:link add name|neigh replace|fdb replace)\s+(\S+)/.exec(r.line);
    if (m) notMade.add(m[1]);
    const dst = /^fdb replace .* dst (\S+)/.exec(r.line);
    if (dst) notMade.add(`fdb ${dst[1]}`);
  }
  const state: KernelState = {
    routes,
    neighbours:
      (keepStale
        ? [...new Map([...cur.neighbours, ...want.neighbours].map((n) => [nKey(n), n])).values()]
        : want.neighbours).filter((n) => !notMade.has(n.ip)),
    fdb: (keepStale ? [...new Map([...cur.fdb, ...want.fdb].map((f) => [fKey(f), f])).values()] : want.fdb)
      .filter((f) => !notMade.has(`fdb ${f.dst}`)),
    rules: want.rules,
    tunnels:
      (keepStale
        ? [...new Set([...cur.tunnels, ...want.tunnels.map((t) => t.name)])]
        : want.tunnels.map((t) => t.name)).filter((t) => !notMade.has(t)),
    tunnelSpecs: Object.fromEntries(
      Object.entries({
        ...(keepStale ? cur.tunnelSpecs : {}),
        ...Object.fromEntries(want.tunnels.map((t) => [t.name, tunnelSignature(t)])),
      }).filter(([name]) => !notMade.has(name)),
    ),
    fouPorts: [
      ...new Set([
        ...(cur.fouPorts ?? []),
        ...want.tunnels.filter((t) => t.encap === "fou").map((t) =>
          `${t.encapPort}/${t.remote.includes(":") ? 6 : 4}`
        ),
      ]),
    ],
  };
  return {
    state,
    lines: s.pre.length + s.routes.length + s.post.length + s.bridge.length,
    failed: w.failed,
    refusedLines,
  };
}

function mergeRoutes(want: Route[], cur: Route[]): Route[] {
  const d = diffRoutes(want, cur);
  const removed = new Set(d.remove);
  const out = want.slice();
  for (const r of cur) if (removed.has(r)) out.push(r);
  return out;
}

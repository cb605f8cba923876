/**
 * `kube-router cleanup` for the proxy: removes exactly what the proxy creates and nothing else.
 *
 * - nftables: our `kube-router-proxy` tables (both families).
 * - IPVS: only virtual services whose VIP is in our `kube-router-svip` sets or on `kube-dummy-if`,
 *   or whose firewall mark one of our DSR rules sets; never inside `--excluded-cidrs`. (Upstream
 *   flushes the whole IPVS table.) A kernel without IPVS has nothing to clean.
 * - iptables: jumps into our chains from built-in chains, then our chains
 *   (`KUBE-ROUTER-SERVICES`, `-POSTROUTING`, `-HAIRPIN`, `-DSR`), per family.
 * - ipsets: ours by name (after the rules that referenced them are gone).
 * - the `kube-dummy-if` link (it holds nothing but our VIPs).
 * - DSR policy routing: `fwmark … lookup 78 priority 32764` rules and table 78's `local default`
 *   route, per family. (Tunnels inside pods go with the pods; they are not removed.)
 *
 * Every step treats "not found" as done, so cleanup is idempotent and works without a snapshot.
 *
 * @module
 */
import type { ControllerContext } from "../controller.ts";
import { ExecError } from "../../kernel/exec.ts";
import { deleteLink, linkAddresses } from "../../kernel/ip/address.ts";
import { applyDsrRouting, readDsrRouting, renderDsrRouting } from "../../kernel/ip/fwmark_rule.ts";
import * as ipset from "../../kernel/ipset/mod.ts";
import * as iptables from "../../kernel/iptables/mod.ts";
import { diffTables, type IpvsTable, readIpvs, renderBatch, restoreIpvs } from "../../kernel/ipvs/mod.ts";
import { anyCidrContains, parseCidr } from "./ip.ts";
import { isOurChain, isOurSet } from "./iptables_render.ts";
import { DUMMY_IF } from "./ipvs_apply.ts";
import { nftCleanup } from "./nft_apply.ts";

/** Whether an error says the kernel has no IPVS at all (then there is nothing to clean). */
function noIpvs(e: unknown): boolean {
  return e instanceof ExecError &&
    /Protocol not available|Can't initialize ipvs|cannot start/i.test(e.stderr);
}

/** Removes our chains and the jumps into them from one table dump, as one --noflush payload. */
export function iptablesCleanupPayload(dump: iptables.TableDump): string {
  const ours = dump.chains.filter((c) => isOurChain(c.name)).map((c) => c.name);
  const edits = dump.rules
    .filter((r) => iptables.isBuiltinChain(r.chain) && isOurChain(jumpTarget(r.args) ?? ""))
    .map((r) => ["-D", r.chain, ...r.args]);
  if (!ours.length && !edits.length) return "";
  return iptables.renderNoflush({ table: dump.name, replaceChains: new Map(), deleteChains: ours, edits });
}

function jumpTarget(args: readonly string[]): string | undefined {
  const i = args.findIndex((a) => a === "-j" || a === "-g");
  return i >= 0 ? args[i + 1] : undefined;
}

export async function proxyCleanup(
  ctx: ControllerContext,
  extras: { iptablesBackend?: iptables.IptablesBackend } = {},
) {
  const { runner, log } = ctx;
  await nftCleanup(runner);

  // Tag IPVS services as ours before the sets and addresses that tag them are gone.
  const vips = new Set<string>((await linkAddresses(runner, DUMMY_IF) ?? []).map((a) => a.split("/")[0]));
  const setNames = await ipset.listNames(runner).catch(() => [] as string[]);
  for (const n of setNames.filter((n) => /kube-router-svip$/.test(n))) {
    for (const s of await ipset.save(runner, {}, n)) s.entries.forEach((e) => vips.add(e));
  }
  const backend = extras.iptablesBackend ?? await iptables.detectIptablesBackend(runner);
  const marks = new Set<number>();
  const dumps: iptables.TableDump[][] = [];
  for (const family of ["ipv4", "ipv6"] as const) {
    try {
      const d = await iptables.save(runner, { family, backend });
      dumps.push(d);
      for (const t of d) {
        for (const r of t.rules) {
          if (r.chain !== "KUBE-ROUTER-DSR") continue;
          const i = r.args.indexOf("--set-xmark");
          if (i >= 0) marks.add(parseInt(r.args[i + 1].split("/")[0], 16));
        }
      }
    } catch (e) {
      log.debug("cleanup: cannot read {family} rules: {error}", { family, error: String(e) });
      dumps.push([]);
    }
  }
  const excluded = ctx.options.excludedCidrs.map((c) => parseCidr(c)).filter((c) => c !== undefined);
  try {
    const table = await readIpvs(runner);
    const batch = renderBatch(diffTables(table, new Map() as IpvsTable, {
      owned: (s) =>
        s.fwmark
          ? marks.has(s.fwmark)
          : vips.has(s.address ?? "") && !anyCidrContains(excluded, s.address ?? ""),
    }));
    await restoreIpvs(runner, batch);
  } catch (e) {
    if (!noIpvs(e)) throw e;
    log.debug("cleanup: no IPVS in this kernel; no virtual services to remove");
  }

  for (const [i, family] of (["ipv4", "ipv6"] as const).entries()) {
    const payload = dumps[i].map(iptablesCleanupPayload).join("");
    if (payload) await iptables.restoreNoflush(runner, { family, backend }, payload);
  }
  await ipset.destroySets(runner, setNames.filter(isOurSet));
  await deleteLink(runner, DUMMY_IF);
  for (const f of [4, 6] as const) {
    let have;
    try {
      have = await readDsrRouting(runner, f);
    } catch (e) {
      // e.g. IPv6 disabled: nothing of that family can be ours.
      log.debug("cleanup: cannot read IPv{f} rules: {error}", { f, error: String(e) });
      continue;
    }
    await applyDsrRouting(runner, f, renderDsrRouting(have, { marks: [], localRoute: false }));
  }
}

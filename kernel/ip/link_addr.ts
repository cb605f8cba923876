/**
 * Addresses on the router's own links (the kube-bridge gateway address). Kept apart from
 * `address.ts`, which the proxy owns for kube-dummy-if.
 *
 * @module
 */

export interface LinkAddress {
  /** "10.244.1.1/24" */
  cidr: string;
  dev: string;
}

/** Parses `ip -j addr show dev X` into global-scope addresses. */
export function parseLinkAddresses(json: string): LinkAddress[] {
  const text = json.trim();
  if (text === "") return [];
  const rows = JSON.parse(text) as Array<
    { ifname: string; addr_info?: Array<{ local: string; prefixlen: number; scope?: string }> }
  >;
  const out: LinkAddress[] = [];
  for (const r of rows) {
    for (const a of r.addr_info ?? []) {
      if (a.scope && a.scope !== "global") continue;
      out.push({ cidr: `${a.local}/${a.prefixlen}`, dev: r.ifname });
    }
  }
  return out;
}

export function listLinkAddressesArgv(dev: string): string[] {
  return ["ip", "-j", "addr", "show", "dev", dev];
}

export function renderAddrReplace(a: LinkAddress): string {
  return `addr replace ${a.cidr} dev ${a.dev}`;
}

export function renderAddrDel(a: LinkAddress): string {
  return `addr del ${a.cidr} dev ${a.dev}`;
}

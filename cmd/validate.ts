/**
 * Cross-field and range checks on parsed options, the ones upstream does at start-up plus
 * the ones it forgets (negative periods). Every problem is reported at once.
 *
 * @module
 */
import type { AgentOptions } from "./options.ts";
import { ConfigError } from "./errors.ts";
import { formatGoDuration, isIP, isIPv4 } from "./flag_parse.ts";
import { parseCidr as parseNetCidr } from "../net/ip.ts";

/**
 * Parses "a.b.c.d/n" or "x::/n" (the length is required); undefined when malformed.
 */
export function parseCidr(text: string): { ip: string; len: number; v6: boolean } | undefined {
  const t = text.trim();
  // Strict, like Go's net.ParseCIDR behind upstream's flags: no leading-zero octets.
  const c = parseNetCidr(t, { bareIsHost: false });
  if (!c) return undefined;
  return { ip: t.slice(0, t.indexOf("/")), len: c.len, v6: c.family === 6 };
}

/** True for ASNs a BGP peer may use (not 0, AS_TRANS, or the reserved 65535/4294967295). */
export function isUsableAsn(n: number): boolean {
  return Number.isInteger(n) && n > 0 && n <= 4294967294 && n !== 23456 && n !== 65535;
}

const HOLD_MIN = 3_000;
const HOLD_MAX = (18 * 3600 + 12 * 60 + 16) * 1000;

export function validateOptions(o: AgentOptions): void {
  const problems: string[] = [];
  const bad = (flag: string, value: unknown, accepted: string) =>
    problems.push(`invalid value ${JSON.stringify(value)} for --${flag}: ${accepted}`);

  const periods: Array<[string, number]> = [
    ["cache-sync-timeout", o.cacheSyncTimeout],
    ["ipvs-sync-period", o.ipvsSyncPeriod],
    ["ipvs-graceful-period", o.ipvsGracefulPeriod],
    ["iptables-sync-period", o.iptablesSyncPeriod],
    ["routes-sync-period", o.routesSyncPeriod],
    ["injected-routes-sync-period", o.injectedRoutesSyncPeriod],
    ["loadbalancer-sync-period", o.loadbalancerSyncPeriod],
  ];
  for (const [flag, ms] of periods) {
    if (!(ms > 0)) bad(flag, formatGoDuration(ms), "must be a duration greater than 0");
  }
  for (
    const [flag, ms] of [
      ["service-tcp-timeout", o.serviceTcpTimeout],
      ["service-tcpfin-timeout", o.serviceTcpfinTimeout],
      ["service-udp-timeout", o.serviceUdpTimeout],
    ] as const
  ) {
    if (ms < 0) bad(flag, formatGoDuration(ms), "must be 0 (keep the kernel's value) or a positive duration");
  }

  for (
    const [flag, list] of [
      ["service-cluster-ip-range", o.serviceClusterIpRange],
      ["service-external-ip-range", o.serviceExternalIpRange],
      ["loadbalancer-ip-range", o.loadbalancerIpRange],
      ["excluded-cidrs", o.excludedCidrs],
    ] as const
  ) {
    for (const c of list) {
      if (!parseCidr(c)) bad(flag, c, "expected CIDRs such as 10.96.0.0/12 or fd00::/108");
    }
  }
  if (o.serviceClusterIpRange.length > 2) {
    bad(
      "service-cluster-ip-range",
      o.serviceClusterIpRange.join(","),
      "at most two CIDRs, one per IP family",
    );
  }
  const npr = /^(\d+)[-:](\d+)$/.exec(o.serviceNodePortRange);
  if (!npr || Number(npr[1]) > Number(npr[2]) || Number(npr[2]) > 65535 || Number(npr[1]) < 1) {
    bad(
      "service-node-port-range",
      o.serviceNodePortRange,
      "expected FIRST-LAST or FIRST:LAST within 1-65535",
    );
  }

  if (
    o.clusterAsn !== 0 &&
    !((o.clusterAsn >= 64512 && o.clusterAsn <= 65534) ||
      (o.clusterAsn >= 4200000000 && o.clusterAsn <= 4294967294))
  ) {
    bad("cluster-asn", o.clusterAsn, "a private ASN: 64512-65534 or 4200000000-4294967294");
  }
  for (const asn of o.peerRouterAsns) {
    if (!isUsableAsn(asn)) bad("peer-router-asns", asn, "ASNs from 1 to 4294967294, not 23456 or 65535");
  }
  if (o.peerRouterIps.length !== o.peerRouterAsns.length) {
    problems.push(
      `--peer-router-ips has ${o.peerRouterIps.length} entries but --peer-router-asns has ${o.peerRouterAsns.length}: give one ASN per peer IP`,
    );
  }
  for (
    const [flag, list] of [
      ["peer-router-ports", o.peerRouterPorts],
      ["peer-router-passwords", o.peerRouterPasswords],
    ] as const
  ) {
    if (list.length !== 0 && list.length !== o.peerRouterIps.length) {
      problems.push(
        `--${flag} has ${list.length} entries but --peer-router-ips has ${o.peerRouterIps.length}: give none or one per peer IP`,
      );
    }
  }
  for (const p of o.peerRouterPorts) if (p < 1 || p > 65535) bad("peer-router-ports", p, "ports 1-65535");
  for (const pw of o.peerRouterPasswords) {
    if (pw !== "" && !/^[A-Za-z0-9+/]*={0,2}$/.test(pw)) {
      problems.push(
        `invalid value for --peer-router-passwords: entries must be base64-encoded (a value is not)`,
      );
    }
  }
  if (o.bgpPort < 1 || o.bgpPort > 65535) bad("bgp-port", o.bgpPort, "a port from 1 to 65535");
  if (o.bgpHoldtime < HOLD_MIN || o.bgpHoldtime > HOLD_MAX) {
    bad("bgp-holdtime", formatGoDuration(o.bgpHoldtime), "a duration from 3s to 18h12m16s");
  }
  if (o.bgpGracefulRestartTime <= 0 || o.bgpGracefulRestartTime > 4095_000) {
    bad(
      "bgp-graceful-restart-time",
      formatGoDuration(o.bgpGracefulRestartTime),
      "a duration from 1s to 4095s",
    );
  }
  if (o.bgpGracefulRestartDeferralTime <= 0 || o.bgpGracefulRestartDeferralTime > 18 * 3_600_000) {
    bad(
      "bgp-graceful-restart-deferral-time",
      formatGoDuration(o.bgpGracefulRestartDeferralTime),
      "a duration from 1s to 18h",
    );
  }
  if (o.routerId !== "" && o.routerId !== "generate" && !isIPv4(o.routerId)) {
    bad("router-id", o.routerId, 'an IPv4 address or "generate"');
  }
  if (o.bfdDetectionMultiplier < 1 || o.bfdDetectionMultiplier > 255) {
    bad("bfd-detection-multiplier", o.bfdDetectionMultiplier, "1-255");
  }
  if (o.bfdPort < 1 || o.bfdPort > 65535) bad("bfd-port", o.bfdPort, "a port from 1 to 65535");
  if (!/^\d+$/.test(o.v)) bad("v", o.v, "a verbosity level, 0 or more");
  if (!o.enableIpv4 && !o.enableIpv6) {
    problems.push("--enable-ipv4 and --enable-ipv6 are both false: enable at least one family");
  }
  for (const ip of o.peerRouterIps) if (!isIP(ip)) bad("peer-router-ips", ip, "IP addresses");
  if (problems.length) throw new ConfigError(problems);
}

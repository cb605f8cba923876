/**
 * Cross-field and range checks on parsed options, the ones upstream does at start-up plus
 * the ones it forgets (negative periods). Every problem is reported at once.
 *
 * @module
 */
import type { AgentOptions } from "../options/mod.ts";
import { ConfigError } from "../errors/mod.ts";
import { formatGoDuration } from "../options/go_text.ts";
import { isIP, isIPv4, parseCidr } from "../net/ip.ts";

// CIDR flags are strict, like Go's net.ParseCIDR behind upstream's flags: the length is
// required and leading-zero octets are refused.
const flagCidr = (text: string) => parseCidr(text.trim(), { bareIsHost: false });

/** True for ASNs a BGP peer may use (not 0, AS_TRANS, or the reserved 65535/4294967295). */
export function isUsableAsn(n: number): boolean {
  return Number.isInteger(n) && n > 0 && n <= 4294967294 && n !== 23456 && n !== 65535;
}

const HOLD_MIN = 3_000;
const HOLD_MAX = (18 * 3600 + 12 * 60 + 16) * 1000;

/** What validation may read besides the options (tests give their own). */
export interface ValidateEnv {
  /** Reads a file named by a flag (`--peer-router-passwords-file`); throws as Deno does. */
  readTextFile?: (path: string) => string;
}

/** Throws one `ConfigError` listing every problem (see `optionProblems`). */
export function validateOptions(o: AgentOptions, env: ValidateEnv = {}): void {
  const problems = optionProblems(o, env);
  if (problems.length) throw new ConfigError(problems);
}

/** A host for a listener: empty (all interfaces), an IP literal, or a DNS name (not a bad IP). */
function isListenHost(h: string): boolean {
  if (h === "" || isIP(h)) return true;
  if (/^[\d.]+$/.test(h)) return false; // digits and dots only: a malformed IPv4, not a name
  return /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/
    .test(h);
}

/** Every problem with the options, one line each, naming the flag and the accepted form. */
export function optionProblems(o: AgentOptions, env: ValidateEnv = {}): string[] {
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
      if (!flagCidr(c)) bad(flag, c, "expected CIDRs such as 10.96.0.0/12 or fd00::/108");
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

  // Upstream's firewall refuses to start on these; here they are usage errors up front.
  const ranges = o.serviceClusterIpRange.map(flagCidr);
  if (o.serviceClusterIpRange.length === 0) {
    problems.push("--service-cluster-ip-range is empty: give the cluster's service CIDR (one per IP family)");
  } else if (ranges.every((r) => r !== null) && ranges.length <= 2) {
    const fams = ranges.map((r) => r!.family);
    const range = o.serviceClusterIpRange.join(",");
    if (o.enableIpv4 && !o.enableIpv6 && fams[0] !== 4) {
      bad(
        "service-cluster-ip-range",
        range,
        "IPv4 is enabled (and IPv6 is not), so the first CIDR must be IPv4",
      );
    } else if (!o.enableIpv4 && o.enableIpv6 && fams[0] !== 6) {
      bad(
        "service-cluster-ip-range",
        range,
        "IPv6 is enabled (and IPv4 is not), so the first CIDR must be IPv6",
      );
    } else if (fams.length === 2 && !(o.enableIpv4 && o.enableIpv6)) {
      bad("service-cluster-ip-range", range, "two CIDRs need dual-stack (--enable-ipv4 and --enable-ipv6)");
    } else if (fams.length === 2 && fams[0] === fams[1]) {
      bad("service-cluster-ip-range", range, "with dual-stack, one IPv4 and one IPv6 CIDR");
    }
  }
  for (const [flag, host] of [["health-addr", o.healthAddr], ["metrics-addr", o.metricsAddr]] as const) {
    if (!isListenHost(host)) {
      bad(flag, host, 'an IP address or host name to listen on, without a port ("" = all interfaces)');
    }
  }
  if (o.peerRouterPasswordsFile !== "" && o.peerRouterPasswords.length === 0) {
    // A FIFO or device would block this synchronous read, and with it every signal handler.
    const read = env.readTextFile ?? ((path: string) => {
      if (!Deno.statSync(path).isFile) throw new Error("not a regular file");
      return Deno.readTextFileSync(path);
    });
    try {
      const text = read(o.peerRouterPasswordsFile).trim();
      const list = text === "" ? [] : text.split(",").map((x) => x.trim());
      if (list.some((pw) => pw !== "" && !/^[A-Za-z0-9+/]*={0,2}$/.test(pw))) {
        problems.push(
          `--peer-router-passwords-file ${
            JSON.stringify(o.peerRouterPasswordsFile)
          }: entries must be base64-encoded, separated by commas (a value is not)`,
        );
      } else if (list.length !== o.peerRouterIps.length && list.length !== 0) {
        problems.push(
          `--peer-router-passwords-file ${
            JSON.stringify(o.peerRouterPasswordsFile)
          } has ${list.length} entries but --peer-router-ips has ${o.peerRouterIps.length}: give none or one per peer IP`,
        );
      }
    } catch (e) {
      problems.push(
        `--peer-router-passwords-file ${JSON.stringify(o.peerRouterPasswordsFile)}: cannot read the file: ${
          (e as Error).message.replace(/:? (readfile|open) '.*'$/, "")
        }`,
      );
    }
  }
  return problems;
}

/**
 * Captures what real BGP daemons send and checks the codec on it: BIRD 2, gobgpd and FRR each open
 * sessions to a minimal fake peer of ours (it answers their OPEN with OPEN + KEEPALIVE, records
 * every message until End-of-RIB, sends routes of its own, then draws a NOTIFICATION). Every
 * captured message must decode without any error under the negotiated context and re-encode
 * byte-exact, and each daemon's own CLI must show the attributes we encoded. With `BGP_CAPTURE_WRITE=1` the captures are written as hex fixtures to
 * `tests/fixtures/bgp_captures/` (read by `bgp/codec/captures_test.ts`).
 *
 * Address conventions: namespaces `bgc-<id>-us`, `bgc-<id>-bird`, `bgc-<id>-gobgp`, `bgc-<id>-frr`. The fake
 * peer's namespace holds 10.231.1.1 + 10.231.1.3 + 2001:db8:231:1::1 towards BIRD
 * (10.231.1.2, 2001:db8:231:1::2) and 10.231.2.1 + 10.231.2.3 towards gobgpd (10.231.2.2,
 * 2001:db8:231:2::2) and 10.231.3.1 + 10.231.3.3 towards FRR (10.231.3.2, 2001:db8:231:3::2);
 * `.1` sessions use 4-octet AS, `.3` sessions pose as a 2-octet-AS speaker.
 * socat listens on port 179 there and relays each connection to a Unix socket this test
 * serves. Advertised: 198.51.100.0/24 subnets and 2001:db8:2310::/44 subnets (BIRD),
 * 192.0.2.0/24 subnets and 2001:db8:2320::/44 subnets (gobgpd), 10.232.0.0/16 subnets and
 * 2001:db8:2330::/44 subnets (FRR). ASNs: us 4200000001 (or 6460x when posing as 2-octet), BIRD
 * 4200000002, gobgpd 4200000003, FRR 4200000004.
 */

import assert from "node:assert/strict";
import {
  AttrCode,
  type BgpMessage,
  type CodecContext,
  decode,
  defaultCodecContext,
  encode,
  frame,
  MessageType,
  negotiate,
  type OpenMessage,
  parsePrefix,
  toHex,
  type UpdateMessage,
} from "../../bgp/codec/mod.ts";
import { CommandRunner } from "../../kernel/exec.ts";

const runner = new CommandRunner();
const FIXTURES = new URL("../fixtures/bgp_captures/", import.meta.url).pathname;

interface Captured {
  raw: Uint8Array;
  msg: BgpMessage;
}

interface Session {
  name: string;
  ctx: CodecContext;
  received: Captured[];
  ourOpen: OpenMessage;
  theirOpen?: OpenMessage;
  /** What the daemon's own CLI showed for the routes we sent it (see `exercise`). */
  shown: Record<string, string>;
  /** Index in `received` at which we sent ROUTE-REFRESH. */
  refreshAt?: number;
}

/** How long a peer must stay quiet after its End-of-RIB markers before we end the capture. */
const QUIET_MS = Number(Deno.env.get("BGC_QUIET_MS") ?? 4000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 20_000,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`, { cause: last });
    await sleep(200);
  }
}

function ourOpen(fourOctet: boolean, families: Array<1 | 2>): OpenMessage {
  const caps: OpenMessage["capabilities"] = families.map((afi) => ({
    code: 1 as const,
    kind: "multiprotocol" as const,
    afi,
    safi: 1 as const,
  }));
  caps.push({ code: 2, kind: "route-refresh" });
  // Graceful restart makes both daemons send End-of-RIB markers (RFC 4724 §2), our cue to stop.
  caps.push({
    code: 64,
    kind: "graceful-restart",
    restarting: false,
    notification: false,
    restartTime: 120,
    families: families.map((afi) => ({ afi, safi: 1 as const, forwardingPreserved: false })),
  });
  if (fourOctet) caps.push({ code: 65, kind: "four-octet-as", asn: 4200000001 });
  return {
    type: MessageType.Open,
    version: 4,
    myAs: fourOctet ? 23456 : 64601,
    holdTime: 90,
    routerId: "10.231.0.1",
    capabilities: caps,
  };
}

function isEndOfRib(m: BgpMessage): { afi: number } | null {
  if (m.type !== MessageType.Update) return null;
  const u = m as UpdateMessage;
  const empty = u.nlri.length === 0 && u.withdrawn.length === 0 && !u.mpReach;
  if (!empty) return null;
  if (!u.mpUnreach && Object.keys(u.attrs).length === 0) return { afi: 1 };
  if (u.mpUnreach && u.mpUnreach.withdrawn.length === 0) return { afi: u.mpUnreach.afi };
  return null;
}

/** Plays the peer on one accepted connection; resolves when it has what it needs. */
async function playPeer(
  conn: Deno.Conn,
  s: Session,
  families: number[],
  provoke: (conn: Deno.Conn) => Promise<void>,
  exercise?: (conn: Deno.Conn, ctx: CodecContext) => Promise<void>,
): Promise<void> {
  let buf = new Uint8Array(0);
  const eor = new Set<number>();
  let ctx: CodecContext = defaultCodecContext;
  let done = false;
  const deadline = Date.now() + 40_000;
  let sentBad = false;
  let sentEor = false;
  let lastAt = Date.now();
  const chunk = new Uint8Array(65536);
  // One read outstanding at a time: a read that loses the race against the timer is kept, not
  // abandoned (an abandoned read would swallow the bytes it later receives).
  let pending: Promise<number | null> | null = null;
  while (!done && Date.now() < deadline) {
    pending ??= conn.read(chunk);
    const n = await Promise.race([pending, sleep(300).then(() => -1)]);
    // Once every family's End-of-RIB has arrived and the peer has been quiet for a while (FRR
    // sends its End-of-RIB before its first routes): send our routes, then ask for the table
    // again with ROUTE-REFRESH (RFC 2918), and after the re-sent table, draw the NOTIFICATION.
    const quiet = families.every((a) => eor.has(a)) && Date.now() - lastAt > QUIET_MS;
    if (quiet && s.refreshAt === undefined) {
      if (exercise) await exercise(conn, ctx);
      s.refreshAt = s.received.length;
      for (const afi of families) {
        await conn.write(
          encode({ type: MessageType.RouteRefresh, afi: afi as 1 | 2, safi: 1, subtype: 0 }, ctx),
        );
      }
      lastAt = Date.now();
    } else if (quiet && !sentBad) {
      sentBad = true;
      await provoke(conn);
    }
    if (n === -1) continue;
    pending = null;
    if (n === null) break;
    const next = new Uint8Array(buf.length + (n as number));
    next.set(buf);
    next.set(chunk.subarray(0, n as number), buf.length);
    buf = next;
    for (;;) {
      const f = frame(buf, ctx);
      if (f.kind === "need-more") break;
      if (f.kind === "error") throw new Error(`${s.name}: framing error ${f.error.message}`);
      const raw = buf.slice(0, f.length);
      buf = buf.slice(f.length);
      const r = decode(raw, ctx);
      if (!r.ok) throw new Error(`${s.name}: decode failed on ${toHex(raw)}: ${r.error.message}`);
      s.received.push({ raw, msg: r.msg });
      if (r.msg.type === MessageType.Open) {
        s.theirOpen = r.msg;
        await conn.write(encode(s.ourOpen, ctx));
        await conn.write(encode({ type: MessageType.Keepalive }, ctx));
        ctx = negotiate(s.ourOpen, r.msg).ctx;
        s.ctx = ctx;
      } else if (r.msg.type === MessageType.Keepalive) {
        await conn.write(encode({ type: MessageType.Keepalive }, ctx));
        if (!sentEor) {
          // Our End-of-RIB markers (RFC 4724 §2): FRR defers its best-path run until every
          // graceful-restart peer has sent them.
          sentEor = true;
          for (const f of s.ctx.families) {
            const eorMsg: UpdateMessage = f.afi === 1
              ? { type: MessageType.Update, withdrawn: [], attrs: {}, nlri: [] }
              : {
                type: MessageType.Update,
                withdrawn: [],
                attrs: {},
                nlri: [],
                mpUnreach: { afi: f.afi, safi: 1, withdrawn: [] },
              };
            await conn.write(encode(eorMsg, ctx));
          }
        }
      } else if (r.msg.type === MessageType.Notification) {
        done = true;
      }
      const e = isEndOfRib(r.msg);
      if (e) eor.add(e.afi);
      lastAt = Date.now();
    }
  }
  (pending as Promise<number | null> | null)?.catch(() => {});
  try {
    conn.close();
  } catch { /* closed */ }
  if (!sentBad) {
    const seen = s.received.map((c) =>
      JSON.stringify(c.msg, (_k, v) => v instanceof Uint8Array ? toHex(v) : v).slice(0, 300)
    );
    throw new Error(
      `${s.name}: no End-of-RIB for all of ${families} within 40 s; received:\n${seen.join("\n")}`,
    );
  }
}

async function run(argv: string[], netns?: string): Promise<string> {
  return (await runner.run(argv, { netns })).stdout;
}

Deno.test({
  name: "BIRD, gobgpd and FRR messages decode and re-encode byte-exact",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const id = crypto.randomUUID().slice(0, 6);
    const ns = { us: `bgc-${id}-us`, bird: `bgc-${id}-bird`, gobgp: `bgc-${id}-gobgp`, frr: `bgc-${id}-frr` };
    const dir = await Deno.makeTempDir({ prefix: "bgc-" });
    await Deno.chmod(dir, 0o777);
    const procs: Deno.ChildProcess[] = [];
    const listeners: Deno.Listener[] = [];
    const sessions = new Map<string, Session>();
    const spawn = (netns: string, argv: string[], log: string) => {
      const f = Deno.openSync(`${dir}/${log}`, { write: true, create: true, append: true });
      const p = new Deno.Command("ip", {
        args: ["netns", "exec", netns, ...argv],
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
      })
        .spawn();
      const sink = () => new WritableStream<Uint8Array>({ write: (c) => void f.writeSync(c) });
      Promise.all([p.stdout.pipeTo(sink()).catch(() => {}), p.stderr.pipeTo(sink()).catch(() => {})]).finally(
        () => f.close(),
      );
      procs.push(p);
      return p;
    };
    const logs = () => {
      let s = "";
      for (const e of Deno.readDirSync(dir)) {
        if (e.name.endsWith(".log")) {
          s += `--- ${e.name}\n${Deno.readTextFileSync(`${dir}/${e.name}`).slice(-2000)}\n`;
        }
      }
      return s;
    };
    try {
      for (const n of Object.values(ns)) {
        await run(["ip", "netns", "add", n]);
        await run(["ip", "link", "set", "lo", "up"], n);
        await run([
          "sysctl",
          "-q",
          "-w",
          "net.ipv6.conf.all.accept_dad=0",
          "net.ipv6.conf.default.accept_dad=0",
        ], n);
      }
      const links: Array<[string, string, number]> = [[ns.bird, "b", 1], [ns.gobgp, "g", 2], [
        ns.frr,
        "f",
        3,
      ]];
      for (const [peerNs, tag, net] of links) {
        await run([
          "ip",
          "-n",
          ns.us,
          "link",
          "add",
          `u${tag}0`,
          "type",
          "veth",
          "peer",
          "name",
          "eth0",
          "netns",
          peerNs,
        ]);
        await run(["ip", "-n", ns.us, "addr", "add", `10.231.${net}.1/24`, "dev", `u${tag}0`]);
        await run(["ip", "-n", ns.us, "addr", "add", `10.231.${net}.3/24`, "dev", `u${tag}0`]);
        await run([
          "ip",
          "-n",
          ns.us,
          "addr",
          "add",
          `2001:db8:231:${net}::1/64`,
          "dev",
          `u${tag}0`,
          "nodad",
        ]);
        await run(["ip", "-n", ns.us, "link", "set", `u${tag}0`, "up"]);
        await run(["ip", "-n", peerNs, "addr", "add", `10.231.${net}.2/24`, "dev", "eth0"]);
        await run(["ip", "-n", peerNs, "addr", "add", `2001:db8:231:${net}::2/64`, "dev", "eth0", "nodad"]);
        await run(["ip", "-n", peerNs, "link", "set", "eth0", "up"]);
      }

      // A header with message type 9 draws a NOTIFICATION (1/3, data 9) from BIRD. gobgpd 3.10
      // panics on that (nil dereference in fsmHandler.handlingError), so its NOTIFICATION
      // (Cease/Administrative Reset) is drawn through its CLI instead.
      const badType = async (conn: Deno.Conn) => {
        const bad = new Uint8Array(19).fill(0xff);
        bad[16] = 0;
        bad[17] = 19;
        bad[18] = 9;
        await conn.write(bad);
      };
      const adminReset = (addr: string) => async () => {
        await run(["gobgp", "-u", "127.0.0.1", "-p", "50051", "neighbor", addr, "reset"], ns.gobgp);
      };
      // Sessions: name → (listen address in us-ns, 4-octet?, families expected).
      const plan: Array<{ name: string; addr: string; four: boolean; families: Array<1 | 2> }> = [
        { name: "bird_as4_ipv4_ipv6", addr: "10.231.1.1", four: true, families: [1, 2] },
        { name: "bird_as4_ipv6_transport", addr: "2001:db8:231:1::1", four: true, families: [2] },
        { name: "bird_as2", addr: "10.231.1.3", four: false, families: [1] },
        { name: "gobgp_as4_ipv4_ipv6", addr: "10.231.2.1", four: true, families: [1, 2] },
        { name: "gobgp_as2", addr: "10.231.2.3", four: false, families: [1] },
        { name: "frr_as4_ipv4_ipv6", addr: "10.231.3.1", four: true, families: [1, 2] },
        { name: "frr_as2", addr: "10.231.3.3", four: false, families: [1] },
      ];
      // Routes we send before provoking, to check our encoder against each daemon's own view.
      const route = (nextHop: string, prefix: string, firstAs: number): UpdateMessage => ({
        type: MessageType.Update,
        withdrawn: [],
        nlri: [parsePrefix(prefix)!],
        attrs: {
          origin: 0,
          asPath: [{ type: 2, asns: [firstAs, 4200000050, 65050] }],
          nextHop,
          med: 42,
          communities: [65001 * 65536 + 1],
          largeCommunities: [{ global: 4200000001, local1: 7, local2: 7 }],
          unknown: [{ flags: 0xc0, code: 99, value: new Uint8Array([1, 2, 3]) }],
        },
      });
      const route6 = (nextHops: string[], prefix: string): UpdateMessage => ({
        type: MessageType.Update,
        withdrawn: [],
        nlri: [],
        attrs: {
          origin: 0,
          asPath: [{ type: 2, asns: [4200000001, 65060] }],
          communities: [65001 * 65536 + 6],
        },
        mpReach: { afi: 2, safi: 1, nextHops, nlri: [parsePrefix(prefix)!] },
      });
      const birdc = (...args: string[]) => run(["birdc", "-s", `${dir}/bird.ctl`, ...args], ns.bird);
      const birdShows = (s: Session, key: string, net: string) =>
        waitFor(`BIRD to show ${net}`, async () => {
          const out = await birdc("show", "route", net, "all");
          return out.includes("BGP.as_path") && (s.shown[key] = out);
        }, 15_000);
      const exercises: Record<string, (s: Session) => (conn: Deno.Conn, ctx: CodecContext) => Promise<void>> =
        {
          bird_as4_ipv4_ipv6: (s) => async (conn, ctx) => {
            const ll = (await run(["ip", "-6", "-o", "addr", "show", "dev", "ub0", "scope", "link"], ns.us))
              .match(/fe80::[0-9a-f:]+/)![0];
            await conn.write(encode(route("10.231.1.1", "10.233.1.0/24", 4200000001), ctx));
            await conn.write(encode(route6(["2001:db8:231:1::1", ll], "2001:db8:2340::/48"), ctx));
            s.shown.ll = ll;
            await birdShows(s, "v4", "10.233.1.0/24");
            await birdShows(s, "v6", "2001:db8:2340::/48");
          },
          bird_as2: (s) => async (conn, ctx) => {
            await conn.write(encode(route("10.231.1.3", "10.233.11.0/24", 64601), ctx));
            await birdShows(s, "v4", "10.233.11.0/24");
          },
          gobgp_as4_ipv4_ipv6: (s) => async (conn, ctx) => {
            await conn.write(encode(route("10.231.2.1", "10.233.2.0/24", 4200000001), ctx));
            await waitFor("gobgpd to show 10.233.2.0/24", async () => {
              const out = await run([
                "gobgp",
                "-u",
                "127.0.0.1",
                "-p",
                "50051",
                "global",
                "rib",
                "-a",
                "ipv4",
                "10.233.2.0/24",
                "-j",
              ], ns.gobgp);
              return out.includes("10.233.2.0/24") && (s.shown.v4 = out);
            }, 15_000);
          },
          frr_as4_ipv4_ipv6: (s) => async (conn, ctx) => {
            await conn.write(encode(route("10.231.3.1", "10.233.3.0/24", 4200000001), ctx));
            await waitFor("FRR to show 10.233.3.0/24", async () => {
              const out = await run([
                "vtysh",
                "--vty_socket",
                dir,
                "-c",
                "show bgp ipv4 unicast 10.233.3.0/24 json",
              ], ns.frr);
              return out.includes("aspath") && (s.shown.v4 = out);
            }, 15_000);
          },
        };
      const served: Promise<void>[] = [];
      for (const p of plan) {
        const path = `${dir}/${p.name}.sock`;
        const l = Deno.listen({ transport: "unix", path });
        listeners.push(l);
        await Deno.chmod(path, 0o777);
        const s: Session = {
          name: p.name,
          ctx: defaultCodecContext,
          received: [],
          ourOpen: ourOpen(p.four, p.families),
          shown: {},
        };
        sessions.set(p.name, s);
        const task = (async () => {
          const conn = await l.accept();
          await playPeer(
            conn,
            s,
            p.families,
            p.name.startsWith("gobgp") ? adminReset(p.addr) : badType,
            exercises[p.name]?.(s),
          );
        })();
        task.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
        served.push(task);
        const v6 = p.addr.includes(":");
        spawn(ns.us, [
          "socat",
          v6
            ? `TCP6-LISTEN:179,bind=[${p.addr}],reuseaddr,fork`
            : `TCP4-LISTEN:179,bind=${p.addr},reuseaddr,fork`,
          `UNIX-CONNECT:${path}`,
        ], `socat-${p.name}.log`);
      }

      // BIRD: IPv4 routes with communities, large communities, MED, prepends; IPv6 routes.
      const birdConf = `
router id 10.231.1.2;
log stderr all;
protocol device { scan time 10; }
protocol static s4 {
  ipv4;
  route 198.51.100.0/25 blackhole;
  route 198.51.100.128/26 blackhole;
  route 198.51.100.192/27 blackhole;
  route 198.51.100.224/28 blackhole;
}
protocol static s6 {
  ipv6;
  route 2001:db8:2310::/48 blackhole;
  route 2001:db8:2311::/48 blackhole;
  route 2001:db8:2312:100::/56 blackhole;
}
filter out4 {
  if source != RTS_STATIC then reject;
  if net ~ [198.51.100.0/25] then {
    bgp_community.add((65000,100)); bgp_community.add((65000,200));
    bgp_large_community.add((4200000002,1,2)); bgp_med = 77;
  }
  if net ~ [198.51.100.128/26] then { bgp_path.prepend(4200000010); bgp_path.prepend(65010); bgp_origin = ORIGIN_INCOMPLETE; }
  if net ~ [198.51.100.192/27] then { bgp_community.add((65535,65281)); bgp_large_community.add((1,2,3)); bgp_large_community.add((4,5,6)); }
  accept;
}
filter out6 {
  if source != RTS_STATIC then reject;
  if net ~ [2001:db8:2310::/48] then { bgp_community.add((65000,600)); bgp_large_community.add((4200000002,6,6)); }
  if net ~ [2001:db8:2311::/48] then { bgp_path.prepend(4200000011); bgp_med = 5; }
  accept;
}
protocol bgp peer4 {
  local 10.231.1.2 as 4200000002; neighbor 10.231.1.1 as 4200000001;
  graceful restart on;
  ipv4 { import all; export filter out4; };
  ipv6 { import all; export filter out6; next hop address 2001:db8:231:1::2; };
}
protocol bgp peer6 {
  local 2001:db8:231:1::2 as 4200000002; neighbor 2001:db8:231:1::1 as 4200000001;
  graceful restart on;
  ipv6 { import none; export filter out6; };
}
protocol bgp peer2 {
  local 10.231.1.2 as 4200000002; neighbor 10.231.1.3 as 64601;
  graceful restart on;
  ipv4 { import all; export filter out4; };
}
`;
      await Deno.writeTextFile(`${dir}/bird.conf`, birdConf);
      await run(["bird", "-p", "-c", `${dir}/bird.conf`], ns.bird);
      spawn(ns.bird, ["bird", "-f", "-c", `${dir}/bird.conf`, "-s", `${dir}/bird.ctl`], "bird.log");

      const gobgpConf = `
[global.config]
  as = 4200000003
  router-id = "10.231.2.2"
  port = -1
  local-address-list = ["10.231.2.2"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.231.2.1"
    peer-as = 4200000001
  [neighbors.timers.config]
    connect-retry = 3
  [neighbors.graceful-restart.config]
    enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true

[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.231.2.3"
    peer-as = 64602
  [neighbors.timers.config]
    connect-retry = 3
  [neighbors.graceful-restart.config]
    enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
`;
      // The 2-octet gobgp session expects AS 64602 from us.
      sessions.get("gobgp_as2")!.ourOpen.myAs = 64602;
      await Deno.writeTextFile(`${dir}/gobgpd.toml`, gobgpConf);
      spawn(ns.gobgp, [
        "gobgpd",
        "-f",
        `${dir}/gobgpd.toml`,
        "-p",
        "--api-hosts",
        "127.0.0.1:50051",
        "--pprof-disable",
      ], "gobgpd.log");
      const gobgp = (...args: string[]) =>
        run(["gobgp", "-u", "127.0.0.1", "-p", "50051", ...args], ns.gobgp);
      await waitFor("gobgpd API", async () => (await gobgp("global"), true), 10_000);
      // Routes go in before the sessions come up so they arrive in the initial table.
      await gobgp(
        "global",
        "rib",
        "add",
        "-a",
        "ipv4",
        "192.0.2.0/25",
        "origin",
        "igp",
        "med",
        "10",
        "community",
        "65000:300,65000:301",
        "large-community",
        "4200000003:1:1,7:8:9",
      );
      await gobgp(
        "global",
        "rib",
        "add",
        "-a",
        "ipv4",
        "192.0.2.128/25",
        "origin",
        "egp",
        "aspath",
        "4200000020,65020",
      );
      await gobgp(
        "global",
        "rib",
        "add",
        "-a",
        "ipv6",
        "2001:db8:2320::/48",
        "nexthop",
        "2001:db8:231:2::2",
        "community",
        "65000:900",
        "large-community",
        "4200000003:6:6",
      );
      await gobgp(
        "global",
        "rib",
        "add",
        "-a",
        "ipv6",
        "2001:db8:2321::/48",
        "nexthop",
        "2001:db8:231:2::2",
        "med",
        "20",
      );

      // FRR bgpd alone (no zebra, no listening socket), as root.
      const frrConf = `
frr defaults traditional
hostname bgc-frr
!
router bgp 4200000004
 bgp router-id 10.231.3.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.231.3.1 remote-as 4200000001
 neighbor 10.231.3.1 timers connect 2
 neighbor 10.231.3.1 advertisement-interval 0
 neighbor 10.231.3.3 remote-as 64603
 neighbor 10.231.3.3 timers connect 2
 neighbor 10.231.3.3 advertisement-interval 0
 !
 address-family ipv4 unicast
  network 10.232.1.0/24 route-map SET4
  network 10.232.2.0/24
 exit-address-family
 !
 address-family ipv6 unicast
  network 2001:db8:2330::/48 route-map SET6
  neighbor 10.231.3.1 activate
  neighbor 10.231.3.1 route-map NH6 out
 exit-address-family
!
route-map SET4 permit 10
 set community 65000:400 65000:401
 set large-community 4200000004:1:1
 set metric 33
 set as-path prepend 4200000040 65040
!
route-map SET6 permit 10
 set community 65000:700
!
route-map NH6 permit 10
 set ipv6 next-hop global 2001:db8:231:3::2
!
`;
      await Deno.writeTextFile(`${dir}/frr-bgpd.conf`, frrConf);
      spawn(ns.frr, [
        "/usr/lib/frr/bgpd",
        "-f",
        `${dir}/frr-bgpd.conf`,
        "-i",
        `${dir}/frr-bgpd.pid`,
        "-z",
        `${dir}/frr-zserv.api`,
        "--vty_socket",
        dir,
        "-P",
        "0",
        "-p",
        "0",
        "-Z",
        "-S",
        "--log",
        "stdout",
      ], "frr-bgpd.log");
      sessions.get("frr_as2")!.ourOpen.myAs = 64603;

      await waitFor("all sessions captured", async () => {
        const settled = await Promise.all(
          served.map((p) => Promise.race([p.then(() => true), sleep(0).then(() => false)])),
        );
        return settled.every(Boolean);
      }, 70_000).catch((e) => {
        throw new Error(`${e.message}\n${logs()}`, { cause: e });
      });
      await Promise.all(served);

      if (Deno.env.get("BGC_SHOW")) { for (const s of sessions.values()) console.log(s.name, s.shown); }

      // ROUTE-REFRESH (ours, encoded by the codec) made every daemon send its table again.
      for (const s of sessions.values()) {
        const nlriCount = (from: number, to: number) =>
          s.received.slice(from, to).reduce(
            (n, c) =>
              n +
              (c.msg.type === MessageType.Update ? c.msg.nlri.length + (c.msg.mpReach?.nlri.length ?? 0) : 0),
            0,
          );
        assert.ok(s.refreshAt !== undefined, `${s.name}: never sent ROUTE-REFRESH`);
        const before = nlriCount(0, s.refreshAt);
        const after = nlriCount(s.refreshAt, s.received.length);
        assert.ok(
          before > 0 && after >= before,
          `${s.name}: ${before} prefixes before ROUTE-REFRESH, ${after} after`,
        );
      }

      // Our encoder, as each daemon understood it (its own CLI): 4-octet AS path, MED, community,
      // large community, the unknown optional transitive attribute 99 with Partial set, IPv6
      // global + link-local next hops, and AS_TRANS + AS4_PATH towards a 2-octet session.
      const b4 = sessions.get("bird_as4_ipv4_ipv6")!.shown;
      for (
        const line of [
          "BGP.as_path: 4200000001 4200000050 65050",
          "BGP.med: 42",
          "BGP.community: (65001,1)",
          "BGP.large_community: (4200000001, 7, 7)",
          "BGP.63 [t]: 01 02 03",
        ]
      ) assert.ok(b4.v4.includes(line), `BIRD lacks ${line}:\n${b4.v4}`);
      assert.ok(b4.v6.includes(`BGP.next_hop: 2001:db8:231:1::1 ${b4.ll}`), b4.v6);
      assert.ok(b4.v6.includes("BGP.community: (65001,6)"), b4.v6);
      const b2s = sessions.get("bird_as2")!.shown.v4;
      assert.ok(b2s.includes("BGP.as_path: 64601 4200000050 65050"), b2s);
      const gj = JSON.parse(sessions.get("gobgp_as4_ipv4_ipv6")!.shown.v4)["10.233.2.0/24"][0].attrs as Array<
        Record<string, unknown>
      >;
      assert.deepEqual(gj.find((a) => a.type === 2)?.as_paths, [{
        segment_type: 2,
        num: 3,
        asns: [4200000001, 4200000050, 65050],
      }]);
      assert.equal(gj.find((a) => a.type === 4)?.metric, 42);
      assert.deepEqual(gj.find((a) => a.type === 8)?.communities, [65001 * 65536 + 1]);
      assert.deepEqual(gj.find((a) => a.type === 32)?.value, [{
        ASN: 4200000001,
        LocalData1: 7,
        LocalData2: 7,
      }]);
      assert.deepEqual(gj.find((a) => a.type === 99), { flags: 0xe0, type: 99, value: "AQID" });
      const fj = JSON.parse(sessions.get("frr_as4_ipv4_ipv6")!.shown.v4).paths[0];
      assert.equal(fj.aspath.string, "4200000001 4200000050 65050");
      assert.equal(fj.metric, 42);
      assert.equal(fj.community.string, "65001:1");
      assert.equal(fj.largeCommunity.string, "4200000001:7:7");
      // Every message: decoded without any RFC 7606 finding, and re-encoded byte-exact.
      for (const s of sessions.values()) {
        assert.ok(s.received.length >= 3, `${s.name}: only ${s.received.length} messages`);
        for (const c of s.received) {
          const ctx = c.msg.type === MessageType.Open ? defaultCodecContext : s.ctx;
          const r = decode(c.raw, ctx);
          assert.ok(r.ok, `${s.name}: ${toHex(c.raw)}`);
          assert.equal(r.errors, undefined, `${s.name}: decode findings ${r.errors?.map((e) => e.message)}`);
          assert.equal(
            toHex(encode(r.msg, ctx)),
            toHex(c.raw),
            `${s.name}: re-encode of ${JSON.stringify(r.msg)}`,
          );
        }
        const last = s.received[s.received.length - 1].msg;
        assert.equal(
          last.type,
          MessageType.Notification,
          `${s.name}: last message is the NOTIFICATION we provoked`,
        );
        if (last.type === MessageType.Notification && !s.name.startsWith("gobgp")) {
          assert.deepEqual([last.code, last.subcode, [...last.data]], [1, 3, [9]]);
        } else if (last.type === MessageType.Notification) {
          assert.deepEqual([last.code, last.subcode], [6, 4]);
        }
      }
      if (Deno.env.get("BGP_CAPTURE_WRITE")) {
        for (const s of sessions.values()) {
          const src = s.name.startsWith("bird")
            ? "BIRD 2.0.12"
            : s.name.startsWith("frr")
            ? "FRR bgpd 8.4"
            : "gobgpd 3.10.0";
          const lines = [
            `# Captured from ${src} by tests/integration/bgp_codec_capture_test.ts (session ${s.name})`,
            `# ctx ${JSON.stringify(s.ctx)}`,
            ...s.received.map((c) => `${c.msg.type} ${toHex(c.raw)}`),
          ];
          await Deno.writeTextFile(`${FIXTURES}${s.name}.hex`, lines.join("\n") + "\n");
        }
      }
      const updates = (n: string) =>
        sessions.get(n)!.received.map((c) => c.msg).filter((m): m is UpdateMessage =>
          m.type === MessageType.Update
        );
      // Distinct prefixes the daemon originated (the table arrives twice: initially and after our
      // ROUTE-REFRESH; FRR also reflects our own 10.233.0.0/16 routes back after the refresh).
      const prefixes4 = (n: string) =>
        [...new Set(updates(n).flatMap((u) => u.nlri.map((p) => `${p.addr}/${p.len}`)))].filter((p) =>
          !p.startsWith("10.233.")
        ).sort();
      const prefixes6 = (n: string) =>
        [...new Set(updates(n).flatMap((u) => (u.mpReach?.nlri ?? []).map((p) => `${p.addr}/${p.len}`)))]
          .sort();

      // BIRD, 4-octet session: the prefixes, communities, large communities, MED; IPv6 via MP_REACH.
      assert.deepEqual(prefixes4("bird_as4_ipv4_ipv6"), [
        "198.51.100.0/25",
        "198.51.100.128/26",
        "198.51.100.192/27",
        "198.51.100.224/28",
      ]);
      assert.deepEqual(prefixes6("bird_as4_ipv4_ipv6"), [
        "2001:db8:2310::/48",
        "2001:db8:2311::/48",
        "2001:db8:2312:100::/56",
      ]);
      const b25 = updates("bird_as4_ipv4_ipv6").find((u) => u.nlri.some((p) => p.len === 25))!;
      assert.deepEqual(b25.attrs.communities, [65000 * 65536 + 100, 65000 * 65536 + 200]);
      assert.deepEqual(b25.attrs.largeCommunities, [{ global: 4200000002, local1: 1, local2: 2 }]);
      assert.equal(b25.attrs.med, 77);
      const b26 = updates("bird_as4_ipv4_ipv6").find((u) => u.nlri.some((p) => p.len === 26))!;
      assert.deepEqual(b26.attrs.asPath, [{ type: 2, asns: [4200000002, 65010, 4200000010] }]);
      // BIRD over IPv6 transport on a shared link: global + link-local next hop (32 octets).
      const v6hops = updates("bird_as4_ipv6_transport").find((u) => u.mpReach)!.mpReach!.nextHops;
      assert.equal(v6hops.length, 2, `next hops ${v6hops}`);
      assert.equal(v6hops[0], "2001:db8:231:1::2");
      assert.match(v6hops[1], /^fe80:/);
      // BIRD, 2-octet session: AS_TRANS in AS_PATH, AS4_PATH on the wire, merged back to 4 octets.
      const b2 = updates("bird_as2").find((u) => u.nlri.some((p) => p.len === 26))!;
      assert.deepEqual(b2.attrs.asPath, [{ type: 2, asns: [4200000002, 65010, 4200000010] }]);
      const raw2 = sessions.get("bird_as2")!.received.find((c) => c.msg === b2)!.raw;
      assert.ok(hasAttr(raw2, AttrCode.As4Path), "AS4_PATH present on the 2-octet session");
      assert.equal(sessions.get("bird_as2")!.theirOpen!.myAs, 23456);

      // gobgpd: the prefixes and attributes we added.
      assert.deepEqual(prefixes4("gobgp_as4_ipv4_ipv6"), ["192.0.2.0/25", "192.0.2.128/25"]);
      assert.deepEqual(prefixes6("gobgp_as4_ipv4_ipv6"), ["2001:db8:2320::/48", "2001:db8:2321::/48"]);
      const g25 = updates("gobgp_as4_ipv4_ipv6").find((u) => u.nlri.some((p) => p.addr === "192.0.2.0"))!;
      assert.deepEqual(g25.attrs.largeCommunities, [{ global: 4200000003, local1: 1, local2: 1 }, {
        global: 7,
        local1: 8,
        local2: 9,
      }]);
      assert.deepEqual(g25.attrs.communities, [65000 * 65536 + 300, 65000 * 65536 + 301]);
      const g2 = updates("gobgp_as2").find((u) => u.nlri.some((p) => p.addr === "192.0.2.128"))!;
      assert.deepEqual(g2.attrs.asPath, [{ type: 2, asns: [4200000003, 4200000020, 65020] }]);

      // FRR: the prefixes, communities, large community, MED and prepends of its route-map.
      assert.deepEqual(prefixes4("frr_as4_ipv4_ipv6"), ["10.232.1.0/24", "10.232.2.0/24"]);
      assert.deepEqual(prefixes6("frr_as4_ipv4_ipv6"), ["2001:db8:2330::/48"]);
      const f1 = updates("frr_as4_ipv4_ipv6").find((u) => u.nlri.some((p) => p.addr === "10.232.1.0"))!;
      assert.deepEqual(f1.attrs.communities, [65000 * 65536 + 400, 65000 * 65536 + 401]);
      assert.deepEqual(f1.attrs.largeCommunities, [{ global: 4200000004, local1: 1, local2: 1 }]);
      assert.equal(f1.attrs.med, 33);
      assert.deepEqual(f1.attrs.asPath, [{ type: 2, asns: [4200000004, 4200000040, 65040] }]);
      const f2 = updates("frr_as2").find((u) => u.nlri.some((p) => p.addr === "10.232.1.0"))!;
      assert.deepEqual(f2.attrs.asPath, [{ type: 2, asns: [4200000004, 4200000040, 65040] }]);
    } finally {
      for (const l of listeners) {
        try {
          l.close();
        } catch { /* closed */ }
      }
      for (const p of procs) {
        try {
          p.kill("SIGKILL");
        } catch { /* exited */ }
      }
      await Promise.all(procs.map((p) => p.status.catch(() => {})));
      for (const n of Object.values(ns)) {
        const pids = await runner.run(["ip", "netns", "pids", n], { okCodes: [0, 1] }).catch(() => ({
          stdout: "",
        }));
        for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
          try {
            Deno.kill(Number(pid), "SIGKILL");
          } catch { /* gone */ }
        }
        await runner.run(["ip", "netns", "del", n], { okCodes: [0, 1] }).catch(() => {});
      }
      if (!Deno.env.get("BGC_KEEP")) await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/** Whether the UPDATE in `raw` carries attribute `code` (walks the attribute headers). */
function hasAttr(raw: Uint8Array, code: number): boolean {
  const wl = (raw[19] << 8) | raw[20];
  let p = 21 + wl;
  const al = (raw[p] << 8) | raw[p + 1];
  p += 2;
  const end = p + al;
  while (p < end) {
    const ext = raw[p] & 0x10;
    const len = ext ? (raw[p + 2] << 8) | raw[p + 3] : raw[p + 2];
    if (raw[p + 1] === code) return true;
    p += (ext ? 4 : 3) + len;
  }
  return false;
}

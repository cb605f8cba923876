/**
 * Finding another process's network namespace without a container runtime: every process has
 * `/proc/<pid>/ns/net` (a link whose target `net:[<inode>]` identifies the namespace) and
 * `/proc/<pid>/net/{fib_trie,if_inet6}` (that namespace's IPv4 local addresses and IPv6
 * addresses). Reading them costs no process: one `readlink` per pid, then two small files per
 * distinct namespace. The result is a path, `/proc/<pid>/ns/net`, that `nsenter --net=` accepts.
 *
 * This is the fallback the proxy uses to reach a DSR endpoint pod's namespace when the CRI
 * (`crictl`) cannot tell it; a pod's IP is unique on its node, so the namespace holding it is
 * the pod's. A namespace with no process in it (a bare `ip netns add`) cannot be found this way.
 *
 * @module
 */
import { formatIPv6 } from "../../net/ip.ts";

/** The slice of /proc this module reads (a fake one in unit tests). */
export interface ProcFs {
  /** Numeric entries of /proc. */
  pids(): Promise<string[]>;
  /** Target of a link such as /proc/1/ns/net; undefined when the process is gone or unreadable. */
  readLink(path: string): Promise<string | undefined>;
  /** File text; undefined when missing or unreadable. */
  readText(path: string): Promise<string | undefined>;
}

/** The real /proc (or another mount of procfs at `root`). */
export function hostProcFs(root = "/proc"): ProcFs {
  return {
    async pids() {
      const out: string[] = [];
      for await (const e of Deno.readDir(root)) if (/^\d+$/.test(e.name)) out.push(e.name);
      return out;
    },
    async readLink(path) {
      try {
        return await Deno.readLink(path.replace(/^\/proc/, root));
      } catch {
        return undefined;
      }
    },
    async readText(path) {
      try {
        return await Deno.readTextFile(path.replace(/^\/proc/, root));
      } catch {
        return undefined;
      }
    },
  };
}

/**
 * IPv4 addresses the namespace owns, from `/proc/<pid>/net/fib_trie`: the `|-- a.b.c.d` entries
 * whose next line is `/32 host LOCAL` (the local table; loopback excluded).
 */
export function parseFibTrieLocal(text: string): string[] {
  const out = new Set<string>();
  const lines = text.split("\n");
  for (let i = 0; i + 1 < lines.length; i++) {
    const m = /^\s*\|--\s+(\d+\.\d+\.\d+\.\d+)\s*$/.exec(lines[i]);
    if (!m || m[1].startsWith("127.")) continue;
    // One prefix entry may carry several leaf lines ("/8 host LOCAL", "/32 link BROADCAST").
    for (let j = i + 1; j < lines.length && /^\s*\/\d+ /.test(lines[j]); j++) {
      if (/^\s*\/32 host LOCAL\b/.test(lines[j])) out.add(m[1]);
    }
  }
  return [...out].sort();
}

/** IPv6 addresses from `/proc/<pid>/net/if_inet6` (32 hex digits each), loopback excluded. */
export function parseIfInet6(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || !/^[0-9a-f]{32}$/i.test(f[0]) || f[5] === "lo") continue;
    const b = new Uint8Array(16);
    for (let i = 0; i < 16; i++) b[i] = parseInt(f[0].slice(2 * i, 2 * i + 2), 16);
    out.push(formatIPv6(b));
  }
  return out.sort();
}

/** One network namespace found in /proc. */
export interface NetnsEntry {
  /** "net:[4026532281]" */
  id: string;
  /** A process inside it (the lowest pid). */
  pid: number;
  /** `/proc/<pid>/ns/net`, for `nsenter --net=`. */
  path: string;
  addresses: string[];
}

/**
 * Every network namespace that has a process in it, with its addresses. `skip` names namespace
 * ids not to read (e.g. the node's own).
 */
export async function scanNetns(
  procfs: ProcFs = hostProcFs(),
  skip: ReadonlySet<string> = new Set(),
): Promise<NetnsEntry[]> {
  const first = new Map<string, number>();
  for (const pid of await procfs.pids()) {
    const id = await procfs.readLink(`/proc/${pid}/ns/net`);
    if (!id || skip.has(id)) continue;
    const n = Number(pid);
    const seen = first.get(id);
    if (seen === undefined || n < seen) first.set(id, n);
  }
  const out: NetnsEntry[] = [];
  for (const [id, pid] of first) {
    const v4 = await procfs.readText(`/proc/${pid}/net/fib_trie`);
    if (v4 === undefined) continue; // process exited between the two reads
    const v6 = await procfs.readText(`/proc/${pid}/net/if_inet6`) ?? "";
    out.push({
      id,
      pid,
      path: `/proc/${pid}/ns/net`,
      addresses: [...parseFibTrieLocal(v4), ...parseIfInet6(v6)],
    });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** Where an address lives: exactly one namespace, none, or several (then none is trusted). */
export type NetnsLookup =
  | { found: NetnsEntry }
  | { found?: undefined; reason: "absent" | "ambiguous"; candidates: NetnsEntry[] };

/** Index of a scan by address. */
export class NetnsIndex {
  #byIp = new Map<string, NetnsEntry[]>();

  constructor(entries: readonly NetnsEntry[]) {
    for (const e of entries) {
      for (const a of e.addresses) {
        const list = this.#byIp.get(a) ?? [];
        list.push(e);
        this.#byIp.set(a, list);
      }
    }
  }

  /** The namespace holding `ip`; ambiguous when more than one namespace holds it. */
  lookup(ip: string): NetnsLookup {
    const list = this.#byIp.get(ip) ?? [];
    if (list.length === 1) return { found: list[0] };
    return { reason: list.length === 0 ? "absent" : "ambiguous", candidates: list };
  }
}

/**
 * A MODEL of the kernel's IPVS, for tests on machines without IPVS (like this project's CI): it
 * executes `ipvsadm -R` batches against an in-memory table with the kernel's refusals (adding an
 * existing service, deleting a missing one, ...), and traces new and existing connections through
 * it: the virtual service by VIP/protocol/port or firewall mark, the real server by scheduler,
 * persistence templates, weight-0 draining and connection reuse.
 *
 * It is NOT the kernel. Schedulers are approximations with the same observable contract we rely on
 * (rr cycles through servers with weight > 0; lc/wlc picks the fewest active connections; sh/dh
 * hash the source/destination address; mh is modelled by rendezvous hashing, which shares Maglev's
 * "minimal disruption" property but not its exact lookup table).
 *
 * @module
 */
import { parseCommand } from "./codec.ts";
import {
  addrPort,
  type IpvsDestination,
  type IpvsProtocol,
  ipvsServiceKey,
  type IpvsTable,
} from "./types.ts";

/** What the kernel would refuse, with the line of the batch. */
export class IpvsModelError extends Error {
  /** `byIpvsadm`: ipvsadm's own check (it ends the whole `-R` batch), not the kernel's refusal. */
  constructor(readonly line: string, readonly reason: string, readonly byIpvsadm = false) {
    super(`${reason} (batch line ${JSON.stringify(line)})`);
    this.name = "IpvsModelError";
  }
}

export interface Packet {
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  protocol: IpvsProtocol;
  /** The packet's firewall mark (set by a mangle rule for DSR services). */
  fwmark?: number;
}

export interface TraceResult {
  service: string;
  destination: IpvsDestination;
  /** True when an existing connection (or a persistence template) decided, not the scheduler. */
  reused: boolean;
}

function fnv(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export class IpvsModel {
  table: IpvsTable = new Map();
  timeouts = { tcp: 900, tcpfin: 120, udp: 300 };
  /**
   * Schedulers the kernel lacks (a module not built or not loadable): adding or editing a
   * service with one is refused, as the kernel refuses it ("Scheduler or persistence engine not found").
   */
  missingSchedulers = new Set<string>();
  private rrCursor = new Map<string, number>();
  private conns = new Map<string, { service: string; dest: string }>();
  private templates = new Map<string, { dest: string; expires: number }>();
  private active = new Map<string, number>();

  /** Runs an `ipvsadm -R` batch; stops at the first line the kernel would refuse, like ipvsadm. */
  restore(batch: string): void {
    for (const raw of batch.split("\n")) {
      const line = raw.trim();
      if (line === "") continue;
      const c = parseCommand(line);
      switch (c.op) {
        case "add-service": {
          const k = ipvsServiceKey(c.service);
          if (this.missingSchedulers.has(c.service.scheduler)) {
            throw new IpvsModelError(line, "Scheduler or persistence engine not found");
          }
          // ipvsadm's own check (it then ends the whole -R batch).
          if (!c.service.fwmark && !c.service.port && c.service.persistence === undefined) {
            throw new IpvsModelError(line, "Zero port specified for non-persistent service", true);
          }
          if (this.table.has(k)) throw new IpvsModelError(line, "Service already exists");
          this.table.set(k, { service: structuredClone(c.service), destinations: new Map() });
          break;
        }
        case "edit-service": {
          const e = this.table.get(ipvsServiceKey(c.service));
          if (this.missingSchedulers.has(c.service.scheduler)) {
            throw new IpvsModelError(line, "Scheduler or persistence engine not found");
          }
          if (!e) throw new IpvsModelError(line, "No such service");
          e.service = structuredClone(c.service);
          break;
        }
        case "delete-service": {
          const k = ipvsServiceKey(c.ref);
          if (!this.table.delete(k)) throw new IpvsModelError(line, "No such service");
          this.dropConns((cn) => cn.service === k);
          break;
        }
        case "add-server":
        case "edit-server": {
          const k = ipvsServiceKey(c.ref);
          const e = this.table.get(k);
          if (!e) throw new IpvsModelError(line, "No such service");
          const dk = addrPort(c.destination.address, c.destination.port);
          const exists = e.destinations.has(dk);
          if (c.op === "add-server" && exists) throw new IpvsModelError(line, "Destination already exists");
          if (c.op === "edit-server" && !exists) throw new IpvsModelError(line, "No such destination");
          e.destinations.set(dk, { ...c.destination });
          break;
        }
        case "delete-server": {
          const k = ipvsServiceKey(c.ref);
          const e = this.table.get(k);
          if (!e) throw new IpvsModelError(line, "No such service");
          const dk = addrPort(c.address, c.port);
          if (!e.destinations.delete(dk)) throw new IpvsModelError(line, "No such destination");
          // expire_nodest_conn=1 (upstream sets it): connections to a removed server are dropped.
          this.dropConns((cn) => cn.service === k && cn.dest === dk);
          break;
        }
      }
    }
  }

  private dropConns(match: (c: { service: string; dest: string }) => boolean): void {
    for (const [id, c] of this.conns) {
      if (match(c)) {
        this.conns.delete(id);
        this.active.set(`${c.service} ${c.dest}`, (this.active.get(`${c.service} ${c.dest}`) ?? 1) - 1);
      }
    }
  }

  /** Keys of the model's virtual services, sorted. */
  services(): string[] {
    return [...this.table.keys()].sort();
  }

  /**
   * Sends one packet: an existing connection keeps its server (even at weight 0: draining);
   * a new one is scheduled among servers with weight > 0, honouring persistence. Undefined when no
   * virtual service matches or no server is available (the kernel then passes the packet to the
   * local stack, where our reject rule answers).
   */
  connect(p: Packet, now = 0): TraceResult | undefined {
    const key = p.fwmark
      ? ipvsServiceKey({ family: p.dst.includes(":") ? 6 : 4, fwmark: p.fwmark, port: 0 })
      : ipvsServiceKey({
        family: p.dst.includes(":") ? 6 : 4,
        protocol: p.protocol,
        address: p.dst,
        port: p.dstPort,
        fwmark: 0,
      });
    const entry = this.table.get(key);
    if (!entry) return undefined;
    const connId = `${p.protocol} ${addrPort(p.src, p.srcPort)} ${addrPort(p.dst, p.dstPort)}`;
    const existing = this.conns.get(connId);
    if (existing && entry.destinations.has(existing.dest)) {
      return { service: key, destination: entry.destinations.get(existing.dest)!, reused: true };
    }
    const svc = entry.service;
    const live = [...entry.destinations.keys()].sort().filter((dk) => entry.destinations.get(dk)!.weight > 0);
    let chosen: string | undefined;
    let reused = false;
    const tKey = `${key} ${p.src}`;
    if (svc.persistence !== undefined) {
      const t = this.templates.get(tKey);
      // expire_quiescent_template=1: a template pointing at a weight-0 server is not reused.
      if (t && t.expires > now && live.includes(t.dest)) {
        chosen = t.dest;
        reused = true;
      }
    }
    if (!chosen) {
      if (live.length === 0) return undefined;
      chosen = this.schedule(key, svc.scheduler, svc.schedFlags, live, p);
    }
    if (svc.persistence !== undefined) {
      this.templates.set(tKey, { dest: chosen, expires: now + svc.persistence * 1000 });
    }
    this.conns.set(connId, { service: key, dest: chosen });
    this.active.set(`${key} ${chosen}`, (this.active.get(`${key} ${chosen}`) ?? 0) + 1);
    return { service: key, destination: entry.destinations.get(chosen)!, reused };
  }

  /** Ends a connection (for lc/wlc accounting). */
  close(p: Packet): void {
    const connId = `${p.protocol} ${addrPort(p.src, p.srcPort)} ${addrPort(p.dst, p.dstPort)}`;
    const c = this.conns.get(connId);
    if (c) this.dropConns((x) => x === c);
  }

  private schedule(key: string, scheduler: string, flags: number[], live: string[], p: Packet): string {
    switch (scheduler) {
      case "sh":
      case "mh": {
        const src = flags.includes(2) ? `${p.src}:${p.srcPort}` : p.src;
        if (scheduler === "sh") return live[fnv(src) % live.length];
        let best = live[0], bestScore = -1;
        for (const d of live) {
          const s = fnv(`${src}|${d}`);
          if (s > bestScore) [best, bestScore] = [d, s];
        }
        return best;
      }
      case "dh":
        return live[fnv(p.dst) % live.length];
      case "lc":
      case "wlc": {
        let best = live[0], bestN = Infinity;
        for (const d of live) {
          const n = this.active.get(`${key} ${d}`) ?? 0;
          if (n < bestN) [best, bestN] = [d, n];
        }
        return best;
      }
      default: {
        const i = (this.rrCursor.get(key) ?? -1) + 1;
        this.rrCursor.set(key, i);
        return live[i % live.length];
      }
    }
  }
}

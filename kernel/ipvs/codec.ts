/**
 * ipvsadm's rule format, both ways: `parseSave` reads `ipvsadm -Sn` output into an `IpvsTable`,
 * `renderSave` prints a table the way ipvsadm 1.31 does, and `parseCommand`/`renderCommand`
 * handle the single lines of an `ipvsadm -R` batch (-A/-E/-D/-a/-e/-d).
 *
 * The format follows ipvsadm(8) and the strings of the installed ipvsadm 1.31 binary
 * (`-A %s -s %s`, ` -p %u`, ` -M %s`, ` --pe %s`, ` -b `, `-a %s -r %s %s -w %d [--tun-type ...]`,
 * `-f %d [-6]`). No kernel here has IPVS, so this is verified against the tool's formats, not a
 * live table.
 *
 * @module
 */
import {
  addrPort,
  type IpvsDestination,
  type IpvsEntry,
  type IpvsFamily,
  type IpvsForward,
  type IpvsProtocol,
  type IpvsService,
  ipvsServiceKey,
  type IpvsTable,
} from "./types.ts";

/** A line of ipvsadm input the parser could not read, with the line and what was expected. */
export class IpvsParseError extends Error {
  constructor(readonly line: string, message: string) {
    super(`ipvsadm rule ${JSON.stringify(line)}: ${message}`);
    this.name = "IpvsParseError";
  }
}

/** The identity of a virtual service in a command. */
export type ServiceRef = Pick<IpvsService, "family" | "protocol" | "address" | "port" | "fwmark">;

export type IpvsCommand =
  | { op: "add-service" | "edit-service"; service: IpvsService }
  | { op: "delete-service"; ref: ServiceRef }
  | { op: "add-server" | "edit-server"; ref: ServiceRef; destination: IpvsDestination }
  | { op: "delete-server"; ref: ServiceRef; address: string; port: number };

const FORWARD_SWITCH: Record<IpvsForward, string> = { masq: "-m", tunnel: "-i", route: "-g" };

function splitAddr(text: string, line: string): { address: string; port: number; family: IpvsFamily } {
  const m = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(text) ?? /^([0-9.]+)(?::(\d+))?$/.exec(text);
  if (!m) {
    throw new IpvsParseError(
      line,
      `bad address ${JSON.stringify(text)}; expected ip[:port] or [ipv6][:port]`,
    );
  }
  const port = m[2] === undefined ? 0 : Number(m[2]);
  if (port > 65535) throw new IpvsParseError(line, `port ${port} out of range 0-65535`);
  return { address: m[1].toLowerCase(), port, family: text.startsWith("[") ? 6 : 4 };
}

const FLAG_NAMES: Record<string, number> = {
  "flag-1": 1,
  "flag-2": 2,
  "flag-3": 3,
  "sh-fallback": 1,
  "sh-port": 2,
  "mh-fallback": 1,
  "mh-port": 2,
};

/** Scheduler flag names as ipvsadm prints them for this scheduler. */
export function schedFlagNames(scheduler: string, bits: readonly number[]): string[] {
  return bits.map((b) => {
    if (b <= 2 && (scheduler === "sh" || scheduler === "mh")) {
      return `${scheduler}-${b === 1 ? "fallback" : "port"}`;
    }
    return `flag-${b}`;
  });
}

function uint(text: string | undefined, what: string, line: string, max = 0xffffffff): number {
  if (text === undefined || !/^\d+$/.test(text) || Number(text) > max) {
    throw new IpvsParseError(line, `bad ${what} ${JSON.stringify(text ?? "")}; expected an integer 0-${max}`);
  }
  return Number(text);
}

/** Parses one ipvsadm command line (a save line or a restore line; a leading "ipvsadm" is allowed). */
export function parseCommand(line: string): IpvsCommand {
  const tok = line.trim().split(/\s+/);
  if (tok[0] === "ipvsadm") tok.shift();
  const cmd = tok.shift();
  let proto: IpvsProtocol | undefined;
  let svcAddr: ReturnType<typeof splitAddr> | undefined;
  let fwmark = 0;
  let v6 = false;
  let scheduler: string | undefined;
  let persistence: number | undefined;
  let netmask: string | undefined;
  let pe: string | undefined;
  let flags: number[] = [];
  let ops = false;
  let real: ReturnType<typeof splitAddr> | undefined;
  let forward: IpvsForward | undefined;
  let weight = 1;
  let upper = 0, lower = 0;
  let tunType: IpvsDestination["tunType"];
  let tunPort: number | undefined;
  for (let i = 0; i < tok.length; i++) {
    const t = tok[i];
    const next = () => {
      if (i + 1 >= tok.length) throw new IpvsParseError(line, `option ${t} needs a value`);
      return tok[++i];
    };
    switch (t) {
      case "-t":
      case "--tcp-service":
        proto = "tcp";
        svcAddr = splitAddr(next(), line);
        break;
      case "-u":
      case "--udp-service":
        proto = "udp";
        svcAddr = splitAddr(next(), line);
        break;
      case "--sctp-service":
        proto = "sctp";
        svcAddr = splitAddr(next(), line);
        break;
      case "-f":
      case "--fwmark-service":
        fwmark = uint(next(), "fwmark", line);
        if (fwmark === 0) throw new IpvsParseError(line, "fwmark must be greater than zero");
        break;
      case "-6":
      case "--ipv6":
        v6 = true;
        break;
      case "-s":
      case "--scheduler":
        scheduler = next();
        break;
      case "-p":
      case "--persistent":
        // The timeout is optional on input (default 300 s); ipvsadm always prints it.
        if (i + 1 < tok.length && /^\d+$/.test(tok[i + 1])) persistence = uint(next(), "timeout", line);
        else persistence = 300;
        break;
      case "-M":
      case "--netmask":
        netmask = next();
        break;
      case "--pe":
        pe = next();
        break;
      case "-b":
      case "--sched-flags": {
        const names = next().split(",").filter((s) => s !== "");
        flags = [];
        for (const n of names) {
          const bit = FLAG_NAMES[n];
          if (bit === undefined) {
            throw new IpvsParseError(
              line,
              `unknown scheduler flag ${JSON.stringify(n)}; accepted: ${Object.keys(FLAG_NAMES).join(", ")}`,
            );
          }
          if (!flags.includes(bit)) flags.push(bit);
        }
        flags.sort();
        break;
      }
      case "-o":
      case "--ops":
        ops = true;
        break;
      case "-r":
      case "--real-server":
        real = splitAddr(next(), line);
        break;
      case "-m":
      case "--masquerading":
        forward = "masq";
        break;
      case "-i":
      case "--ipip":
        forward = "tunnel";
        break;
      case "-g":
      case "--gatewaying":
        forward = "route";
        break;
      case "-w":
      case "--weight":
        weight = uint(next(), "weight", line, 2147483647);
        break;
      case "-x":
      case "--u-threshold":
        upper = uint(next(), "upper threshold", line, 65535);
        break;
      case "-y":
      case "--l-threshold":
        lower = uint(next(), "lower threshold", line, 65535);
        break;
      case "--tun-type": {
        const v = next();
        if (v !== "ipip" && v !== "gue" && v !== "gre") {
          throw new IpvsParseError(line, `bad tunnel type ${JSON.stringify(v)}; accepted: ipip, gue, gre`);
        }
        // ipip is the default tunnel type: normalised away so both printings compare equal.
        tunType = v === "ipip" ? undefined : v;
        break;
      }
      case "--tun-port":
        tunPort = uint(next(), "tunnel port", line, 65535);
        break;
      case "--tun-nocsum":
      case "--tun-csum":
      case "--tun-remcsum":
        break;
      default:
        throw new IpvsParseError(line, `unexpected ${JSON.stringify(t)}`);
    }
  }
  let ref: ServiceRef;
  if (fwmark) ref = { family: v6 ? 6 : 4, fwmark, port: 0 };
  else if (proto && svcAddr) {
    ref = {
      family: svcAddr.family,
      protocol: proto,
      address: svcAddr.address,
      port: svcAddr.port,
      fwmark: 0,
    };
  } else throw new IpvsParseError(line, "no virtual service (-t, -u, --sctp-service or -f)");

  switch (cmd) {
    case "-A":
    case "--add-service":
    case "-E":
    case "--edit-service":
      return {
        op: cmd === "-A" || cmd === "--add-service" ? "add-service" : "edit-service",
        service: {
          ...ref,
          scheduler: scheduler ?? "wlc",
          ...(persistence !== undefined ? { persistence } : {}),
          ...(netmask !== undefined ? { netmask } : {}),
          ...(pe !== undefined ? { pe } : {}),
          schedFlags: flags,
          ops,
        },
      };
    case "-D":
    case "--delete-service":
      return { op: "delete-service", ref };
    case "-a":
    case "--add-server":
    case "-e":
    case "--edit-server":
    case "-d":
    case "--delete-server": {
      if (!real) throw new IpvsParseError(line, "real-server command without -r");
      const port = real.port === 0 && !fwmark ? ref.port : real.port;
      if (cmd === "-d" || cmd === "--delete-server") {
        return { op: "delete-server", ref, address: real.address, port };
      }
      return {
        op: cmd === "-a" || cmd === "--add-server" ? "add-server" : "edit-server",
        ref,
        destination: {
          address: real.address,
          port,
          forward: forward ?? "route",
          weight,
          upperThreshold: upper,
          lowerThreshold: lower,
          ...(tunType !== undefined ? { tunType } : {}),
          ...(tunPort !== undefined ? { tunPort } : {}),
        },
      };
    }
    default:
      throw new IpvsParseError(
        line,
        `unknown command ${JSON.stringify(cmd ?? "")}; expected -A, -E, -D, -a, -e or -d`,
      );
  }
}

/** Parses `ipvsadm -Sn` output (only -A and -a lines appear in it) into a table. */
export function parseSave(text: string): IpvsTable {
  const table: IpvsTable = new Map();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const c = parseCommand(line);
    if (c.op === "add-service") {
      table.set(ipvsServiceKey(c.service), { service: c.service, destinations: new Map() });
    } else if (c.op === "add-server") {
      const entry = table.get(ipvsServiceKey(c.ref));
      if (!entry) throw new IpvsParseError(line, "real server of a virtual service not listed before it");
      entry.destinations.set(addrPort(c.destination.address, c.destination.port), c.destination);
    } else {
      throw new IpvsParseError(line, "only -A and -a lines belong in ipvsadm -S output");
    }
  }
  return table;
}

/** The virtual-service part of a command: "-t 10.0.0.1:80", "--sctp-service [::1]:9", "-f 12 -6". */
export function renderServiceRef(s: ServiceRef): string {
  if (s.fwmark) return s.family === 6 ? `-f ${s.fwmark} -6` : `-f ${s.fwmark}`;
  const sw = s.protocol === "tcp" ? "-t" : s.protocol === "udp" ? "-u" : "--sctp-service";
  return `${sw} ${addrPort(s.address ?? "", s.port)}`;
}

function renderServiceOptions(s: IpvsService): string {
  let out = ` -s ${s.scheduler}`;
  if (s.persistence !== undefined) {
    out += ` -p ${s.persistence}`;
    if (s.netmask !== undefined) out += ` -M ${s.netmask}`;
  }
  if (s.pe !== undefined) out += ` --pe ${s.pe}`;
  if (s.schedFlags.length) out += ` -b ${schedFlagNames(s.scheduler, s.schedFlags).join(",")}`;
  if (s.ops) out += " -o";
  return out;
}

function renderDestination(d: IpvsDestination): string {
  let out = `-r ${addrPort(d.address, d.port)} ${FORWARD_SWITCH[d.forward]} -w ${d.weight}`;
  if (d.upperThreshold) out += ` -x ${d.upperThreshold}`;
  if (d.lowerThreshold) out += ` -y ${d.lowerThreshold}`;
  if (d.forward === "tunnel" && d.tunType !== undefined && d.tunType !== "ipip") {
    out += ` --tun-type ${d.tunType}`;
    if (d.tunPort !== undefined) out += ` --tun-port ${d.tunPort}`;
  }
  return out;
}

/** One line of an `ipvsadm -R` batch. */
export function renderCommand(c: IpvsCommand): string {
  switch (c.op) {
    case "add-service":
      return `-A ${renderServiceRef(c.service)}${renderServiceOptions(c.service)}`;
    case "edit-service":
      return `-E ${renderServiceRef(c.service)}${renderServiceOptions(c.service)}`;
    case "delete-service":
      return `-D ${renderServiceRef(c.ref)}`;
    case "add-server":
      return `-a ${renderServiceRef(c.ref)} ${renderDestination(c.destination)}`;
    case "edit-server":
      return `-e ${renderServiceRef(c.ref)} ${renderDestination(c.destination)}`;
    case "delete-server":
      return `-d ${renderServiceRef(c.ref)} -r ${addrPort(c.address, c.port)}`;
  }
}

/** Prints a table as `ipvsadm -Sn` would (services, each followed by its real servers), sorted. */
export function renderSave(table: IpvsTable): string {
  const lines: string[] = [];
  for (const key of [...table.keys()].sort()) {
    const e = table.get(key)!;
    lines.push(renderCommand({ op: "add-service", service: e.service }));
    for (const dk of [...e.destinations.keys()].sort()) {
      lines.push(renderCommand({ op: "add-server", ref: e.service, destination: e.destinations.get(dk)! }));
    }
  }
  return lines.length ? lines.join("\n") + "\n" : "";
}

/** A deep copy of a table (entries and destination maps). */
export function cloneTable(t: IpvsTable): IpvsTable {
  return new Map(
    [...t].map(([k, e]: [string, IpvsEntry]) => [k, {
      service: structuredClone(e.service),
      destinations: new Map([...e.destinations].map(([dk, d]) => [dk, { ...d }])),
    }]),
  );
}

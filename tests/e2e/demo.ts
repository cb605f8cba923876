/**
 * `deno task demo`: builds a three-node lab with a few pods and an outside client, prints the
 * topology and a connectivity matrix (TCP and UDP from every host to every pod and node), and
 * tears everything down. Needs root (it creates network namespaces); touches nothing outside them.
 *
 * Addresses: the lab defaults (node network 10.250.0.0/24, node-3 on 10.250.1.0/24 behind the
 * lab router; pod CIDRs 10.251.1-3.0/24). Controllers' demos will be added here as they land.
 *
 * @module
 */

import { createLab, type LabHost } from "../fixtures/lab.ts";

const TCP_PORT = 8080;
const UDP_PORT = 5353;

function cell(tcp: string, udp: string): string {
  const mark = (s: string) => s === "connected" ? "ok" : s === "timeout" ? "--" : s.slice(0, 2);
  return `${mark(tcp)}/${mark(udp)}`;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  await using lab = await createLab({
    prefix: "demo",
    nodes: [{ name: "node-1" }, { name: "node-2" }, { name: "node-3", subnet: "b" }],
  });
  for (
    const [node, pods] of [["node-1", ["web-1", "db-1"]], ["node-2", ["web-2"]], ["node-3", [
      "web-3",
    ]]] as const
  ) {
    for (const name of pods) await lab.addPod(node, { name });
  }
  await lab.addClient("outside");
  const built = performance.now() - t0;

  console.log(lab.describe());
  console.log(`\nbuilt in ${Math.round(built)} ms; static pod routes: ${lab.staticPodRoutes}\n`);

  const targets: LabHost[] = [...lab.pods.values(), ...lab.nodes.values()];
  const sources: LabHost[] = [...targets, ...lab.clients.values()];
  await Promise.all(targets.map((h) => lab.serve(h.name, { tcp: [TCP_PORT], udp: [UDP_PORT] })));

  const t1 = performance.now();
  const rows = await Promise.all(sources.map(async (from) => {
    const cells = await Promise.all(targets.map(async (to) => {
      const [t, u] = await lab.probeMany([
        { from: from.name, proto: "tcp", ip: to.ip, port: TCP_PORT, timeoutMs: 800 },
        { from: from.name, proto: "udp", ip: to.ip, port: UDP_PORT, timeoutMs: 800 },
      ]);
      return cell(t.status, u.status);
    }));
    return [from.name, ...cells];
  }));
  const probeMs = performance.now() - t1;

  const header = ["from \\ to", ...targets.map((t) => t.name)];
  const table = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...table.map((r) => r[i].length)));
  console.log(`connectivity, TCP ${TCP_PORT} / UDP ${UDP_PORT} (ok = answered, -- = timeout, re = refused):`);
  for (const r of table) console.log("  " + r.map((c, i) => c.padEnd(widths[i])).join("  "));
  console.log(`\n${sources.length * targets.length * 2} probes in ${Math.round(probeMs)} ms; tearing down`);
}

if (import.meta.main) {
  await main();
}

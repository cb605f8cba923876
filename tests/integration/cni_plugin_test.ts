/**
 * The CNI file the router writes, loaded the way a kubelet's runtime loads it: libcni (its
 * `cnitool`, built from the Go module proxy by tests/servers/build.sh) reads the file from a
 * config directory and runs Debian's real `bridge`, `host-local` and `portmap` plugins, which
 * attach a pod namespace to kube-bridge. A pod gets an address from the node's pod CIDR, and its
 * bridge port is in hairpin mode (so a pod reaches itself through its own Service).
 *
 * Each case runs in a throwaway node namespace `cni-<random>` and pod namespace `cnp-<random>`;
 * the plugins' host-local state lands on a tmpfs mounted over /var/lib in the plugin process's
 * own mount namespace, so nothing is left on the machine.
 *
 * Addresses: pod CIDR 10.213.1.0/24 (gateway 10.213.1.1 on kube-bridge, first pod 10.213.1.2).
 */
import assert from "node:assert/strict";
import { ensureCniConf, MANAGED_MARK } from "../../kernel/cni/conf.ts";
import { CommandRunner } from "../../kernel/exec.ts";
import { serverBinDir } from "../fixtures/apiserver.ts";

const PLUGINS = "/usr/lib/cni";
const root = new CommandRunner();

interface Attached {
  /** cnitool's ADD result. */
  result: { ips?: Array<{ address: string; gateway?: string }> };
  /** `ip -o addr show dev eth0` in the pod namespace. */
  podAddr: string;
  /** `bridge -d link show` in the node namespace. */
  bridgePorts: string;
}

/** Writes the conf with the router's code, then ADDs and DELs one pod through libcni. */
async function attachPod(fileName: string, existing?: string): Promise<Attached> {
  const cnitool = `${await serverBinDir()}/cnitool`;
  const id = crypto.randomUUID().slice(0, 8);
  const node = `cni-${id}`, pod = `cnp-${id}`;
  const dir = await Deno.makeTempDir({ prefix: "kr-cni-" });
  await root.run(["ip", "netns", "add", node]);
  await root.run(["ip", "netns", "add", pod]);
  try {
    if (existing !== undefined) await Deno.writeTextFile(`${dir}/${fileName}`, existing);
    await ensureCniConf(`${dir}/${fileName}`, { podCidrs: ["10.213.1.0/24"], mtu: 1500 });
    const mark = "--cut--";
    const script = [
      "set -e",
      "mount -t tmpfs kr-cni-state /var/lib",
      `CNI_PATH=${PLUGINS} NETCONFPATH=${dir} ${cnitool} add mynet /var/run/netns/${pod}`,
      `echo ${mark}`,
      `ip -n ${pod} -o addr show dev eth0`,
      `echo ${mark}`,
      "bridge -d link show",
      `CNI_PATH=${PLUGINS} NETCONFPATH=${dir} ${cnitool} del mynet /var/run/netns/${pod}`,
    ].join("\n");
    const out = await new CommandRunner(node).run(["unshare", "-m", "sh", "-c", script]);
    const [result, podAddr, bridgePorts] = out.stdout.split(`${mark}\n`);
    return { result: JSON.parse(result), podAddr, bridgePorts };
  } finally {
    await root.run(["ip", "netns", "del", pod], { okCodes: [0, 1] });
    await root.run(["ip", "netns", "del", node], { okCodes: [0, 1] });
    await Deno.remove(dir, { recursive: true });
  }
}

function assertAttached(a: Attached): void {
  assert.equal(a.result.ips?.[0]?.address, "10.213.1.2/24", JSON.stringify(a.result));
  assert.equal(a.result.ips?.[0]?.gateway, "10.213.1.1");
  assert.match(a.podAddr, /inet 10\.213\.1\.2\/24/);
  assert.match(a.bridgePorts, /master kube-bridge[\s\S]*hairpin on/, `bridge ports:\n${a.bridgePorts}`);
}

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  ...opts,
  name: "CNI: the .conflist the DaemonSet names loads in libcni; the pod gets an IP, hairpin on",
  async fn() {
    assertAttached(await attachPod("10-kuberouter.conflist"));
  },
});

Deno.test({
  ...opts,
  name: "CNI: the default single-plugin .conf loads in libcni; the pod gets an IP, hairpin on",
  async fn() {
    assertAttached(await attachPod("10-kuberouter.conf"));
  },
});

Deno.test({
  ...opts,
  name: "CNI: a single-plugin body an older agent wrote under a .conflist name is turned into a list",
  async fn() {
    const old = JSON.stringify({
      cniVersion: "0.3.0",
      name: "mynet",
      type: "bridge",
      bridge: "kube-bridge",
      isDefaultGateway: true,
      ipam: { type: "host-local", ranges: [[{ subnet: "10.213.1.0/24" }]] },
      [MANAGED_MARK]: true,
    });
    assertAttached(await attachPod("10-kuberouter.conflist", old));
  },
});

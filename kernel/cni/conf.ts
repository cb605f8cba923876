/**
 * The CNI network configuration kube-router manages (`10-kuberouter.conf` or `.conflist`): the
 * `bridge` plugin's host-local IPAM gets this node's pod CIDRs, the bridge its MTU and hairpin
 * mode; every field we do not manage is preserved as it was.
 *
 * Upstream requires the file to exist; when it does not, we create it from upstream's reference
 * config and mark it with `"kubeRouterManaged": true` (CNI ignores unknown keys) so cleanup knows
 * it may delete the file. A file an operator provided is only edited, never deleted.
 *
 * @module
 */

export const DEFAULT_CNI_CONF = "/etc/cni/net.d/10-kuberouter.conf";
export const MANAGED_MARK = "kubeRouterManaged";

/** The path upstream reads: `KUBE_ROUTER_CNI_CONF_FILE` or the default. */
export function cniConfPath(env: (k: string) => string | undefined = (k) => Deno.env.get(k)): string {
  return env("KUBE_ROUTER_CNI_CONF_FILE") || DEFAULT_CNI_CONF;
}

export interface CniUpdate {
  podCidrs: readonly string[];
  /** Bridge MTU; undefined leaves the field as it is. */
  mtu?: number;
  /** `hairpinMode` of the bridge plugin; undefined leaves it as it is. */
  hairpinMode?: boolean;
}

type Json = Record<string, unknown>;

/** Whether a path names a network configuration *list* (libcni reads those as `{plugins: [...]}`). */
export function isConfList(path: string): boolean {
  return path.endsWith(".conflist");
}

/**
 * Upstream's reference config: for a `.conflist` the one its manifests install (the bridge plugin
 * with `hairpinMode`, so a pod reaches itself through its own Service, then `portmap` for
 * hostPort), for a `.conf` the single bridge plugin (`cni/10-kuberouter.conf`, plus hairpin).
 */
export function referenceConf(list: boolean): Json {
  const bridge: Json = {
    type: "bridge",
    bridge: "kube-bridge",
    isDefaultGateway: true,
    hairpinMode: true,
    ipam: { type: "host-local" },
  };
  if (!list) return { cniVersion: "0.3.0", name: "mynet", ...bridge, [MANAGED_MARK]: true };
  return {
    cniVersion: "0.3.0",
    name: "mynet",
    plugins: [
      { name: "kubernetes", ...bridge },
      { type: "portmap", capabilities: { snat: true, portMappings: true } },
    ],
    [MANAGED_MARK]: true,
  };
}

/**
 * A single-plugin body we wrote ourselves under a `.conflist` name (libcni refuses it: "no plugins
 * in list") becomes the reference list, its bridge plugin keeping every setting the old body had
 * (and gaining the reference's, such as hairpin mode); anything else is left as is.
 */
function asListIfOurs(conf: Json): Json {
  if (Array.isArray(conf.plugins) || conf[MANAGED_MARK] !== true || conf.type !== "bridge") return conf;
  const list = referenceConf(true);
  const { cniVersion, name, [MANAGED_MARK]: _mark, ...plugin } = conf;
  const plugins = list.plugins as Json[];
  plugins[0] = { ...plugins[0], ...plugin };
  return { ...list, cniVersion: cniVersion ?? list.cniVersion, name: name ?? list.name };
}

function bridgePlugin(conf: Json): Json {
  if (Array.isArray(conf.plugins)) {
    const p = (conf.plugins as Json[]).find((x) => x && x.type === "bridge");
    if (!p) {
      throw new Error(`CNI conflist ${JSON.stringify(conf.name)}: no plugin of type "bridge" in plugins`);
    }
    return p;
  }
  if (conf.type !== "bridge") {
    throw new Error(
      `CNI conf ${JSON.stringify(conf.name)}: type is ${JSON.stringify(conf.type)}, expected "bridge"`,
    );
  }
  return conf;
}

/**
 * Returns the updated config text; `list` says the file is a `.conflist`. Legacy IPAM `subnet` is
 * converted into `ranges`; pod CIDRs missing from `ranges` are added (one range set each);
 * existing ranges are kept.
 */
export function updateCniConf(text: string | null, u: CniUpdate, list = false): string {
  const parsed: Json | null = text === null ? null : JSON.parse(text);
  const conf: Json = parsed === null ? referenceConf(list) : list ? asListIfOurs(parsed) : parsed;
  const br = bridgePlugin(conf);
  const ipam = (br.ipam ?? (br.ipam = { type: "host-local" })) as Json;
  let ranges = (Array.isArray(ipam.ranges) ? ipam.ranges : []) as Array<Array<Json>>;
  if (typeof ipam.subnet === "string") {
    if (!ranges.some((set) => set.some((r) => r.subnet === ipam.subnet))) {
      ranges = [[{ subnet: ipam.subnet }], ...ranges];
    }
    delete ipam.subnet;
  }
  for (const cidr of u.podCidrs) {
    if (!ranges.some((set) => set.some((r) => r.subnet === cidr))) ranges.push([{ subnet: cidr }]);
  }
  ipam.ranges = ranges;
  if (u.mtu !== undefined) br.mtu = u.mtu;
  if (u.hairpinMode !== undefined) br.hairpinMode = u.hairpinMode;
  return JSON.stringify(conf, null, 2) + "\n";
}

/** Whether the config text was created by us (cleanup may delete it). */
export function isManagedConf(text: string): boolean {
  try {
    return (JSON.parse(text) as Json)[MANAGED_MARK] === true;
  } catch {
    return false;
  }
}

/** Reads the file, or null when absent. */
export async function readConf(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Writes the updated config when it differs (atomic rename, mode 0644). Returns whether it wrote.
 * A `.conflist` sibling is used when the `.conf` path does not exist but the conflist does.
 */
export async function ensureCniConf(path: string, u: CniUpdate): Promise<{ path: string; written: boolean }> {
  let target = path;
  let text = await readConf(target);
  if (text === null && target.endsWith(".conf")) {
    const alt = target + "list";
    const altText = await readConf(alt);
    if (altText !== null) [target, text] = [alt, altText];
  }
  const next = updateCniConf(text, u, isConfList(target));
  if (next === text) return { path: target, written: false };
  const dir = target.replace(/\/[^/]*$/, "") || ".";
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${target}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(tmp, next, { mode: 0o644 });
  await Deno.chmod(tmp, 0o644);
  await Deno.rename(tmp, target);
  return { path: target, written: true };
}

/**
 * Deletes the config at exactly `path` if we created it; returns whether it did. No sibling or
 * default path is considered: a marked file elsewhere may belong to another agent's config.
 */
export async function removeManagedConf(path: string): Promise<boolean> {
  const text = await readConf(path);
  if (text !== null && isManagedConf(text)) {
    await Deno.remove(path);
    return true;
  }
  return false;
}

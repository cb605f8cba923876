/**
 * Writes a single-layer OCI image archive from a root filesystem directory, for
 * `ctr -n k8s.io images import` (no image registry is reachable here, so every image the test
 * cluster runs is made locally).
 *
 *   deno run -A tests/cluster/oci.ts ROOTFS NAME OUT.tar '{"Entrypoint":[...],"Cmd":[...],"Env":[...]}'
 *
 * @module
 */

async function sha256File(path: string): Promise<string> {
  // Blobs are tens of MB at most: reading them whole is fine.
  const data = await Deno.readFile(path);
  const d = await crypto.subtle.digest("SHA-256", data);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function run(argv: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(argv[0], { args: argv.slice(1), stderr: "piped" }).output();
  if (code !== 0) throw new Error(`${argv.join(" ")}: exit ${code}: ${new TextDecoder().decode(stderr)}`);
}

async function writeBlob(
  dir: string,
  bytes: Uint8Array<ArrayBuffer>,
): Promise<{ digest: string; size: number }> {
  const d = await crypto.subtle.digest("SHA-256", bytes);
  const hex = Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
  await Deno.writeFile(`${dir}/blobs/sha256/${hex}`, bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

export async function writeOciArchive(
  rootfs: string,
  name: string,
  out: string,
  config: Record<string, unknown>,
): Promise<void> {
  const work = await Deno.makeTempDir({ prefix: "kr-oci-" });
  try {
    await Deno.mkdir(`${work}/blobs/sha256`, { recursive: true });
    // Uncompressed layer: the diff ID is the layer digest; numeric owners, sorted names, fixed
    // mtimes so the same root filesystem always gives the same image ID.
    const layer = `${work}/layer.tar`;
    await run([
      "tar",
      "--sort=name",
      "--numeric-owner",
      "--owner=0",
      "--group=0",
      "--mtime=@0",
      "-C",
      rootfs,
      "-cf",
      layer,
      ".",
    ]);
    const layerHex = await sha256File(layer);
    const layerSize = (await Deno.stat(layer)).size;
    await Deno.rename(layer, `${work}/blobs/sha256/${layerHex}`);
    const enc = new TextEncoder();
    const cfg = await writeBlob(
      work,
      enc.encode(JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config,
        rootfs: { type: "layers", diff_ids: [`sha256:${layerHex}`] },
      })),
    );
    const manifest = await writeBlob(
      work,
      enc.encode(JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...cfg },
        layers: [{
          mediaType: "application/vnd.oci.image.layer.v1.tar",
          digest: `sha256:${layerHex}`,
          size: layerSize,
        }],
      })),
    );
    await Deno.writeTextFile(`${work}/oci-layout`, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await Deno.writeTextFile(
      `${work}/index.json`,
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...manifest,
          annotations: { "io.containerd.image.name": name, "org.opencontainers.image.ref.name": name },
        }],
      }),
    );
    await run(["tar", "-C", work, "-cf", `${out}.tmp`, "oci-layout", "index.json", "blobs"]);
    await Deno.rename(`${out}.tmp`, out);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

if (import.meta.main) {
  const [rootfs, name, out, cfg] = Deno.args;
  if (!rootfs || !name || !out) {
    console.error("usage: oci.ts ROOTFS NAME OUT.tar [CONFIG-JSON]");
    Deno.exit(2);
  }
  await writeOciArchive(rootfs, name, out, cfg ? JSON.parse(cfg) : {});
}

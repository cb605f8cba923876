/**
 * Throughput of the BGP transport over loopback (127.0.0.1 in this process's namespace):
 * Deno's own TCP sockets (the reference, measured in the same run) against the FFI sockets
 * with and without a TCP MD5 key. Prints MB/s and the ratio to the reference.
 *
 *   deno run -A bench/bgp_transport_throughput.ts [MiB=200] [readChunkKiB=256]
 *
 * A full BGP table is about 100 MB of UPDATEs, so anything in the hundreds of MB/s keeps the
 * socket far from being the bottleneck.
 *
 * @module
 */
import { type BgpConn, connectTcp, listenTcp, writeAll } from "../bgp/transport/mod.ts";

const MIB = Number(Deno.args[0] ?? 200);
const CHUNK = Number(Deno.args[1] ?? 256) * 1024;

async function run(kind: "deno" | "ffi" | "ffi+md5"): Promise<number> {
  const l = listenTcp({
    hostname: "127.0.0.1",
    port: 0,
    kind: kind === "deno" ? "deno" : "ffi",
    passwords: kind === "ffi+md5" ? { "127.0.0.1": "bench-pw" } : undefined,
  });
  const it = l[Symbol.asyncIterator]();
  const c: BgpConn = await connectTcp({
    hostname: "127.0.0.1",
    port: l.addr.port,
    ...(kind === "deno" ? {} : { localAddress: "127.0.0.1" }),
    ...(kind === "ffi+md5" ? { password: "bench-pw" } : {}),
  });
  const s = (await it.next()).value as BgpConn;
  const total = MIB * 1024 * 1024;
  const writer = (async () => {
    const block = new Uint8Array(64 * 1024).fill(0xff);
    for (let sent = 0; sent < total; sent += block.length) await writeAll(c, block);
    c.close();
  })();
  const buf = new Uint8Array(CHUNK);
  const t0 = performance.now();
  let got = 0;
  for (;;) {
    const n = await s.read(buf);
    if (n === null) break;
    got += n;
  }
  const secs = (performance.now() - t0) / 1000;
  await writer;
  s.close();
  l.close();
  if (got !== total) throw new Error(`${kind}: got ${got} of ${total} bytes`);
  return total / secs / 1e6;
}

const ref = await run("deno");
console.log(`deno sockets (reference): ${ref.toFixed(0)} MB/s`);
for (const kind of ["ffi", "ffi+md5"] as const) {
  const r = await run(kind);
  console.log(`${kind}: ${r.toFixed(0)} MB/s, ratio to reference ${(r / ref).toFixed(2)}`);
}

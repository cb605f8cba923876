/**
 * A fake CRI RuntimeService for tests (not used by the agent): `node:http2` on a UNIX socket,
 * answering `ListPodSandbox` and `PodSandboxStatus` (v1, or only v1alpha2 when asked) from a
 * list of sandboxes, with containerd's shape of the verbose `info` document.
 *
 * @module
 */
import http2 from "node:http2";
import { pbBytes, pbDecode, pbVarint } from "./mod.ts";

/** A sandbox the fake runtime reports. */
export interface FakeSandbox {
  id: string;
  name: string;
  namespace: string;
  uid: string;
  ready: boolean;
  /** Network namespace path reported in runtimeSpec (containerd), or ... */
  netnsPath?: string;
  /** ... only a pid (as CRI-O reports). */
  pid?: number;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function encodeSandbox(s: FakeSandbox): Uint8Array {
  const meta = concat([pbBytes(1, s.name), pbBytes(2, s.uid), pbBytes(3, s.namespace), pbVarint(4, 0)]);
  return concat([
    pbBytes(1, s.id),
    pbBytes(2, meta),
    ...(s.ready ? [] : [pbVarint(3, 1)]),
    pbVarint(4, 1_700_000_000),
  ]);
}

function infoJson(s: FakeSandbox): string {
  return JSON.stringify({
    pid: s.pid ?? 0,
    processStatus: "running",
    ...(s.netnsPath
      ? { runtimeSpec: { linux: { namespaces: [{ type: "pid" }, { type: "network", path: s.netnsPath }] } } }
      : {}),
  });
}

/** A running fake runtime; `calls` lists the gRPC paths it was asked. */
export interface FakeCri {
  endpoint: string;
  calls: string[];
  close(): Promise<void>;
}

export async function startFakeCri(
  sandboxes: FakeSandbox[],
  options: { version?: "v1" | "v1alpha2" } = {},
): Promise<FakeCri> {
  const path = await Deno.makeTempFile({ prefix: "pxf-cri-", suffix: ".sock" });
  await Deno.remove(path);
  const version = options.version ?? "v1";
  const calls: string[] = [];
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const p = String(headers[":path"]);
    calls.push(p);
    const chunks: Uint8Array[] = [];
    stream.on("data", (c: Uint8Array) => chunks.push(c));
    stream.on("end", (): void => {
      const reply = (status: number, body?: Uint8Array, message = ""): void => {
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on(
          "wantTrailers",
          () =>
            stream.sendTrailers({
              "grpc-status": String(status),
              ...(message ? { "grpc-message": message } : {}),
            }),
        );
        if (!body) {
          stream.end();
          return;
        }
        const frame = new Uint8Array(5 + body.length);
        new DataView(frame.buffer).setUint32(1, body.length);
        frame.set(body, 5);
        stream.end(frame);
      };
      const m = /^\/runtime\.([^.]+)\.RuntimeService\/(\w+)$/.exec(p);
      if (!m || m[1] !== version) {
        reply(12, undefined, "unknown service");
        return;
      }
      const req = concat(chunks).subarray(5);
      if (m[2] === "ListPodSandbox") {
        reply(0, concat(sandboxes.map((s) => pbBytes(1, encodeSandbox(s)))));
        return;
      }
      if (m[2] === "PodSandboxStatus") {
        const id = new TextDecoder().decode(pbDecode(req).find((f) => f.field === 1)?.bytes);
        const s = sandboxes.find((x) => x.id === id);
        if (!s) {
          reply(5, undefined, `sandbox ${id} not found`);
          return;
        }
        const entry = concat([pbBytes(1, "info"), pbBytes(2, infoJson(s))]);
        reply(0, concat([pbBytes(1, pbBytes(1, s.id)), pbBytes(2, entry)]));
        return;
      }
      reply(12, undefined, "unimplemented");
    });
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  return {
    endpoint: `unix://${path}`,
    calls,
    async close() {
      await new Promise<void>((r) => server.close(() => r()));
      await Deno.remove(path).catch(() => {});
    },
  };
}

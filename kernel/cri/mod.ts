/**
 * A minimal CRI client: the two RuntimeService calls the proxy needs to find a pod's network
 * namespace, over gRPC on the runtime's UNIX socket (`--runtime-endpoint`), as upstream does.
 *
 * - `ListPodSandbox` → ready sandboxes with their pod name, namespace and uid;
 * - `PodSandboxStatus` (verbose) → `info["info"]`, a JSON document in which containerd reports
 *   `runtimeSpec.linux.namespaces[type=network].path` (and CRI-O/containerd a `pid`, whose
 *   `/proc/<pid>/ns/net` is the same namespace).
 *
 * gRPC is HTTP/2 (`node:http2`, prior knowledge over the socket) carrying length-prefixed protobuf
 * messages; the few message fields used are encoded and decoded here by hand (field numbers from
 * `k8s.io/cri-api/pkg/apis/runtime/v1/api.proto`). `runtime.v1` is tried first, then
 * `runtime.v1alpha2` (same numbers) for older runtimes.
 *
 * Tested against a fake CRI server built on `node:http2` (no container runtime runs here), so the
 * wire format is checked against our reading of the proto, not against containerd.
 *
 * @module
 */
import http2 from "node:http2";
import net from "node:net";

// ---- protobuf, just enough ----

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** A length-delimited field (string, bytes, embedded message). */
export function pbBytes(field: number, data: Uint8Array | string): Uint8Array {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return new Uint8Array([...varint((field << 3) | 2), ...varint(bytes.length), ...bytes]);
}

/** A varint field (bool, enum, uint32). */
export function pbVarint(field: number, value: number): Uint8Array {
  return new Uint8Array([...varint(field << 3), ...varint(value)]);
}

/** One decoded field: varints as numbers, length-delimited as bytes; fixed-width ones skipped. */
export interface PbField {
  field: number;
  varint?: number;
  bytes?: Uint8Array;
}

/** Decodes the top level of a protobuf message. Throws on truncated input. */
export function pbDecode(buf: Uint8Array): PbField[] {
  const out: PbField[] = [];
  let i = 0;
  const readVarint = (): number => {
    let v = 0, mul = 1;
    for (;;) {
      if (i >= buf.length) throw new RangeError("protobuf: truncated varint");
      const b = buf[i++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const key = readVarint();
    const field = Math.floor(key / 8), wire = key & 7;
    if (wire === 0) out.push({ field, varint: readVarint() });
    else if (wire === 2) {
      const len = readVarint();
      if (i + len > buf.length) throw new RangeError(`protobuf: field ${field} runs past the end`);
      out.push({ field, bytes: buf.subarray(i, i + len) });
      i += len;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new RangeError(`protobuf: unsupported wire type ${wire} (field ${field})`);
  }
  return out;
}

const text = (b?: Uint8Array) => (b ? new TextDecoder().decode(b) : "");

// ---- CRI messages ----

/** A pod sandbox as `ListPodSandbox` reports it. */
export interface Sandbox {
  id: string;
  name: string;
  namespace: string;
  uid: string;
  ready: boolean;
}

/** Decodes `ListPodSandboxResponse { repeated PodSandbox items = 1 }`. */
export function decodeListPodSandbox(buf: Uint8Array): Sandbox[] {
  const out: Sandbox[] = [];
  for (const item of pbDecode(buf).filter((f) => f.field === 1 && f.bytes)) {
    // PodSandbox { id = 1; PodSandboxMetadata metadata = 2; PodSandboxState state = 3 (READY = 0) }
    const s: Sandbox = { id: "", name: "", namespace: "", uid: "", ready: true };
    for (const f of pbDecode(item.bytes!)) {
      if (f.field === 1) s.id = text(f.bytes);
      else if (f.field === 3) s.ready = f.varint === 0;
      else if (f.field === 2 && f.bytes) {
        // PodSandboxMetadata { name = 1; uid = 2; namespace = 3; attempt = 4 }
        for (const m of pbDecode(f.bytes)) {
          if (m.field === 1) s.name = text(m.bytes);
          else if (m.field === 2) s.uid = text(m.bytes);
          else if (m.field === 3) s.namespace = text(m.bytes);
        }
      }
    }
    out.push(s);
  }
  return out;
}

/** Encodes `PodSandboxStatusRequest { pod_sandbox_id = 1; verbose = 2 }`. */
export function encodePodSandboxStatusRequest(id: string, verbose = true): Uint8Array {
  return concat([pbBytes(1, id), ...(verbose ? [pbVarint(2, 1)] : [])]);
}

/** Decodes the `info` map (field 2, entries key = 1, value = 2) of `PodSandboxStatusResponse`. */
export function decodeSandboxInfo(buf: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of pbDecode(buf).filter((f) => f.field === 2 && f.bytes)) {
    let k = "", v = "";
    for (const f of pbDecode(e.bytes!)) {
      if (f.field === 1) k = text(f.bytes);
      else if (f.field === 2) v = text(f.bytes);
    }
    out.set(k, v);
  }
  return out;
}

/**
 * The network namespace path from a sandbox's verbose info document (`info["info"]`): the
 * runtime spec's network namespace path when it names one, else `/proc/<pid>/ns/net`.
 */
export function netnsFromInfo(json: string): string | undefined {
  let doc: {
    pid?: number;
    runtimeSpec?: { linux?: { namespaces?: Array<{ type?: string; path?: string }> } };
  };
  try {
    doc = JSON.parse(json || "{}");
  } catch {
    return undefined;
  }
  const ns = doc.runtimeSpec?.linux?.namespaces?.find((n) => n.type === "network");
  if (ns?.path) return ns.path;
  return typeof doc.pid === "number" && doc.pid > 0 ? `/proc/${doc.pid}/ns/net` : undefined;
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

// ---- gRPC over HTTP/2 ----

/** A gRPC call that failed: transport error, HTTP status, or a non-zero grpc-status. */
export class GrpcError extends Error {
  constructor(readonly method: string, readonly grpcStatus: number | undefined, message: string) {
    super(`CRI ${method}: ${message}`);
    this.name = "GrpcError";
  }
}

/** gRPC status 12: the server does not implement the method (e.g. an older API version). */
const UNIMPLEMENTED = 12;

/** Socket path of an endpoint ("unix:///run/containerd/containerd.sock" or a bare path). */
export function socketPath(endpoint: string): string {
  if (endpoint.startsWith("unix://")) return endpoint.slice("unix://".length);
  if (endpoint.includes("://")) {
    throw new Error(
      `--runtime-endpoint ${
        JSON.stringify(endpoint)
      }: only unix:// sockets are supported, e.g. unix:///run/containerd/containerd.sock`,
    );
  }
  return endpoint;
}

/** One unary call on an open session. */
function unary(
  session: http2.ClientHttp2Session,
  method: string,
  body: Uint8Array,
  timeoutMs: number,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": method,
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks: Uint8Array[] = [];
    let status: number | undefined, message = "", httpStatus = 0;
    const timer = setTimeout(() => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      reject(new GrpcError(method, undefined, `no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const meta = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) status = Number(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) message = decodeURIComponent(String(h["grpc-message"]));
    };
    req.on("response", (h) => {
      httpStatus = Number(h[":status"]);
      meta(h); // a trailers-only answer carries grpc-status here
    });
    req.on("trailers", meta);
    req.on("data", (c: Uint8Array) => chunks.push(c));
    req.on("error", (e: Error) => {
      clearTimeout(timer);
      reject(new GrpcError(method, undefined, e.message));
    });
    req.on("end", () => {
      clearTimeout(timer);
      if (httpStatus !== 200) return reject(new GrpcError(method, undefined, `HTTP status ${httpStatus}`));
      if (status !== 0) {
        return reject(
          new GrpcError(method, status, `grpc-status ${status ?? "missing"}${message ? `: ${message}` : ""}`),
        );
      }
      const all = concat(chunks);
      // One length-prefixed message: compressed flag (0), 4-byte big-endian length.
      if (all.length < 5 || all[0] !== 0) {
        return reject(new GrpcError(method, status, `bad response framing (${all.length} bytes)`));
      }
      const len = new DataView(all.buffer, all.byteOffset).getUint32(1);
      if (all.length < 5 + len) return reject(new GrpcError(method, status, "truncated response"));
      resolve(all.slice(5, 5 + len));
    });
    const frame = new Uint8Array(5 + body.length);
    new DataView(frame.buffer).setUint32(1, body.length);
    frame.set(body, 5);
    req.end(frame);
  });
}

/** A CRI RuntimeService client on one UNIX socket; `close()` when done. */
export class CriClient {
  #session?: http2.ClientHttp2Session;
  #version?: string;

  constructor(readonly endpoint: string, private readonly timeoutMs = 5000) {}

  #open(): http2.ClientHttp2Session {
    if (this.#session && !this.#session.closed && !this.#session.destroyed) return this.#session;
    const path = socketPath(this.endpoint);
    const s = http2.connect("http://localhost", { createConnection: () => net.connect(path) });
    s.on("error", () => {}); // surfaced by the request that fails
    this.#session = s;
    return s;
  }

  /** Calls `runtime.<version>.RuntimeService/<name>`, trying v1 then v1alpha2 once. */
  async #call(name: string, body: Uint8Array): Promise<Uint8Array> {
    const versions = this.#version ? [this.#version] : ["v1", "v1alpha2"];
    let last: unknown;
    for (const v of versions) {
      try {
        const out = await unary(this.#open(), `/runtime.${v}.RuntimeService/${name}`, body, this.timeoutMs);
        this.#version = v;
        return out;
      } catch (e) {
        last = e;
        if (!(e instanceof GrpcError && e.grpcStatus === UNIMPLEMENTED)) throw e;
      }
    }
    throw last;
  }

  /** Every pod sandbox the runtime knows (ready or not). */
  async listSandboxes(): Promise<Sandbox[]> {
    return decodeListPodSandbox(await this.#call("ListPodSandbox", new Uint8Array()));
  }

  /** The network namespace path of one sandbox, or undefined when the runtime does not say. */
  async sandboxNetns(id: string): Promise<string | undefined> {
    const info = decodeSandboxInfo(await this.#call("PodSandboxStatus", encodePodSandboxStatusRequest(id)));
    return netnsFromInfo(info.get("info") ?? "");
  }

  close(): void {
    this.#session?.close();
    this.#session = undefined;
  }
}

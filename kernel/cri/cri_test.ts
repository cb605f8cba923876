// The CRI client against a fake RuntimeService (node:http2 on a UNIX socket, kernel/cri/fake_server.ts):
// no container runtime runs here, so this checks the wire format against our reading of
// k8s.io/cri-api's api.proto, not against containerd. Golden bytes are worked out by hand.
import assert from "node:assert/strict";
import { startFakeCri } from "./fake_server.ts";
import {
  CriClient,
  decodeListPodSandbox,
  encodePodSandboxStatusRequest,
  netnsFromInfo,
  pbBytes,
  pbDecode,
  socketPath,
} from "./mod.ts";

Deno.test("protobuf: golden request bytes, decode of nested fields, truncated input rejected", () => {
  // PodSandboxStatusRequest { pod_sandbox_id: "abc", verbose: true }
  assert.deepEqual([...encodePodSandboxStatusRequest("abc")], [0x0a, 3, 0x61, 0x62, 0x63, 0x10, 1]);
  // ListPodSandboxResponse { items { id "x" metadata { name "p" uid "u" namespace "n" } state NOTREADY } }
  const item = [0x0a, 1, 0x78, 0x12, 9, 0x0a, 1, 0x70, 0x12, 1, 0x75, 0x1a, 1, 0x6e, 0x18, 1];
  assert.deepEqual(decodeListPodSandbox(new Uint8Array([0x0a, item.length, ...item])), [
    { id: "x", name: "p", namespace: "n", uid: "u", ready: false },
  ]);
  assert.throws(() => pbDecode(new Uint8Array([0x0a, 5, 1])), /runs past the end/);
  assert.equal(pbBytes(1, "a".repeat(200)).length, 1 + 2 + 200, "two-byte length varint");
});

Deno.test("netnsFromInfo: containerd's runtimeSpec path, else /proc/<pid>/ns/net", () => {
  assert.equal(
    netnsFromInfo(
      JSON.stringify({
        pid: 9,
        runtimeSpec: { linux: { namespaces: [{ type: "network", path: "/var/run/netns/cni-1" }] } },
      }),
    ),
    "/var/run/netns/cni-1",
  );
  assert.equal(netnsFromInfo(JSON.stringify({ pid: 77 })), "/proc/77/ns/net");
  assert.equal(netnsFromInfo("{}"), undefined);
  assert.equal(netnsFromInfo("not json"), undefined);
});

Deno.test("socketPath: unix:// or a bare path; other schemes refused with what is accepted", () => {
  assert.equal(socketPath("unix:///run/containerd/containerd.sock"), "/run/containerd/containerd.sock");
  assert.equal(socketPath("/run/crio/crio.sock"), "/run/crio/crio.sock");
  assert.throws(() => socketPath("tcp://127.0.0.1:1234"), /only unix:\/\/ sockets are supported/);
});

Deno.test({
  name:
    "CriClient over gRPC: list sandboxes, netns from verbose status (path or pid), v1alpha2 fallback, errors",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const fake = await startFakeCri([
      {
        id: "s1",
        name: "web",
        namespace: "default",
        uid: "u1",
        ready: true,
        netnsPath: "/var/run/netns/cni-a",
      },
      { id: "s0", name: "web", namespace: "default", uid: "u0", ready: false },
      { id: "s2", name: "db", namespace: "prod", uid: "u2", ready: true, pid: 4242 },
    ]);
    const c = new CriClient(fake.endpoint);
    try {
      assert.deepEqual(await c.listSandboxes(), [
        { id: "s1", name: "web", namespace: "default", uid: "u1", ready: true },
        { id: "s0", name: "web", namespace: "default", uid: "u0", ready: false },
        { id: "s2", name: "db", namespace: "prod", uid: "u2", ready: true },
      ]);
      assert.equal(await c.sandboxNetns("s1"), "/var/run/netns/cni-a");
      assert.equal(await c.sandboxNetns("s2"), "/proc/4242/ns/net");
      await assert.rejects(c.sandboxNetns("nope"), /grpc-status 5: sandbox nope not found/);
      assert.ok(fake.calls.every((p) => p.startsWith("/runtime.v1.RuntimeService/")), fake.calls.join());
    } finally {
      c.close();
      await fake.close();
    }

    const old = await startFakeCri([{ id: "s9", name: "x", namespace: "y", uid: "z", ready: true, pid: 7 }], {
      version: "v1alpha2",
    });
    const c2 = new CriClient(old.endpoint);
    try {
      assert.equal(await c2.sandboxNetns("s9"), "/proc/7/ns/net");
      assert.deepEqual(old.calls, [
        "/runtime.v1.RuntimeService/PodSandboxStatus",
        "/runtime.v1alpha2.RuntimeService/PodSandboxStatus",
      ]);
      await c2.listSandboxes();
      assert.equal(old.calls.at(-1), "/runtime.v1alpha2.RuntimeService/ListPodSandbox", "version remembered");
    } finally {
      c2.close();
      await old.close();
    }

    const none = new CriClient("unix:///nonexistent/pxf.sock", 1000);
    await assert.rejects(none.listSandboxes(), /CRI \/runtime\.v1\.RuntimeService\/ListPodSandbox: /);
    none.close();
  },
});

// crictl JSON parsing against HAND-WRITTEN samples shaped like crictl's documented `-o json`
// output for containerd (runtimeSpec netns path) and a runtime that reports only a pid. No CRI
// runtime runs here, so these are NOT captured outputs.
import assert from "node:assert/strict";
import { crictlArgv, parseInspectpNetns, parsePods } from "./mod.ts";

const PODS = JSON.stringify({
  items: [
    {
      id: "8d1c0b5e7a",
      metadata: { name: "web-1", uid: "u-1", namespace: "default", attempt: 1 },
      state: "SANDBOX_READY",
      createdAt: "1700000000000000000",
      labels: {},
      annotations: {},
      runtimeHandler: "",
    },
    {
      id: "00aa",
      metadata: { name: "web-1", uid: "u-1", namespace: "default", attempt: 0 },
      state: "SANDBOX_NOTREADY",
    },
  ],
});

Deno.test("parsePods: ready sandboxes only", () => {
  assert.deepEqual(parsePods(PODS), [{ id: "8d1c0b5e7a", name: "web-1", namespace: "default", uid: "u-1" }]);
  assert.deepEqual(parsePods(""), []);
});

Deno.test("parseInspectpNetns: containerd's runtimeSpec path, else /proc/<pid>/ns/net", () => {
  const containerd = JSON.stringify({
    status: { id: "8d1c0b5e7a", state: "SANDBOX_READY" },
    info: {
      pid: 4242,
      runtimeSpec: {
        linux: {
          namespaces: [
            { type: "pid" },
            { type: "ipc" },
            { type: "network", path: "/var/run/netns/cni-6f1b-22" },
          ],
        },
      },
    },
  });
  assert.equal(parseInspectpNetns(containerd), "/var/run/netns/cni-6f1b-22");
  assert.equal(parseInspectpNetns(JSON.stringify({ info: { pid: 77 } })), "/proc/77/ns/net");
  assert.equal(parseInspectpNetns(JSON.stringify({ status: {} })), undefined);
});

Deno.test("crictlArgv: unix:// added to a bare socket path", () => {
  assert.deepEqual(crictlArgv("/run/containerd/containerd.sock", "pods"), [
    "crictl",
    "--runtime-endpoint",
    "unix:///run/containerd/containerd.sock",
    "--timeout",
    "5s",
    "pods",
  ]);
  assert.equal(crictlArgv("unix:///x.sock")[2], "unix:///x.sock");
});

import assert from "node:assert/strict";
import { ExecError } from "../../kernel/exec.ts";
import { refusedByLine, servicesInLine, withoutServices } from "./contain.ts";
import { snapshot, svc } from "./testing.ts";
import type { ProxyPlan, VirtualService } from "./types.ts";

const vs = (service: string, vip: string, port: number, kind: VirtualService["kind"] = "clusterip") =>
  ({ service, vip, port, kind, protocol: "TCP", fwmark: 0 }) as VirtualService;

const plan = {
  services: [vs("a/web", "10.96.0.10", 80), vs("a/web", "10.96.0.10", 443), vs("b/db", "10.96.0.20", 5432)],
  rejects: [{ service: "c/empty", family: 4, vip: "10.96.0.30", protocol: "TCP", port: 80 }],
  dsrMarks: [],
} as unknown as ProxyPlan;

Deno.test("proxy containment: a refused line is traced to the Service of its VIP (and port)", () => {
  const names = (line: string) =>
    servicesInLine(line, plan, "r").map((r) => `${r.object} ${r.field} ${r.value}`);
  assert.deepEqual(names("add krp-tmp-x 10.96.0.20"), ["Service b/db spec.clusterIP 10.96.0.20:5432/tcp"]);
  assert.deepEqual(names("add krp-tmp-y 10.96.0.10,tcp:443"), [
    "Service a/web spec.clusterIP 10.96.0.10:443/tcp",
  ]);
  assert.deepEqual(names("addr add 10.96.0.10/32 dev kube-dummy-if scope link"), [
    "Service a/web spec.clusterIP 10.96.0.10:80/tcp",
  ]);
  assert.deepEqual(names("-A KUBE-ROUTER-SERVICES -d 10.96.0.30/32 -p tcp -m tcp --dport 80 -j REJECT"), [
    "Service c/empty spec 10.96.0.30:80/tcp",
  ]);
  assert.deepEqual(names("add krp-tmp-z 10.96.0.99"), [], "an address no Service has names nothing");
});

Deno.test("proxy containment: only an ExecError naming a line is traced", () => {
  const stdin = "create x hash:ip\nadd x 10.96.0.20\n";
  const e = new ExecError(["ipset", "restore"], 1, "ipset v7.17: Error in line 2: boom\n", stdin);
  assert.equal(refusedByLine(e, plan)[0].object, "Service b/db");
  assert.match(refusedByLine(e, plan)[0].reason, /^ipset refused "add x 10\.96\.0\.20": .*boom/);
  assert.deepEqual(refusedByLine(new ExecError(["ipset", "restore"], 1, "no line\n", stdin), plan), []);
  assert.deepEqual(refusedByLine(new Error("x"), plan), []);
});

Deno.test("proxy containment: left-out Services leave the snapshot; others stay the same objects", () => {
  const snap = snapshot({ services: [svc("web"), svc("db")] });
  const out = withoutServices(snap, ["Service default/web", "Node x"]);
  assert.deepEqual([...out.services.keys()], ["default/db"]);
  assert.equal(out.services.get("default/db"), snap.services.get("default/db"));
  assert.equal(withoutServices(snap, []), snap);
});

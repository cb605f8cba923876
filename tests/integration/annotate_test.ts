/**
 * `kube-router annotate` against the real API server: valid annotations are written, invalid
 * ones are refused with the controllers' own messages and nothing is written, `KEY-` removes.
 * Addresses: 192.0.2.0/24 peers exist only as annotation data.
 */
import assert from "node:assert/strict";
import { sharedApiServer } from "../fixtures/apiserver.ts";
import { runAnnotate } from "../../cmd/annotate.ts";
import { ConfigError } from "../../errors/mod.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "annotate: writes valid node annotations, refuses invalid ones atomically, removes with KEY-",
  opts,
  async () => {
    const api = await sharedApiServer();
    const node = `annot-${crypto.randomUUID().slice(0, 8)}`;
    await api.kubectl(["apply", "-f", "-"], {
      stdin: JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: node } }),
    });
    const kc = ["--kubeconfig", api.kubeconfigPath];
    const annotations = async () =>
      JSON.parse((await api.kubectl(["get", "node", node, "-o", "json"])).stdout).metadata.annotations ?? {};
    const print = () => {};
    try {
      assert.equal(
        await runAnnotate([
          "node",
          node,
          "kube-router.io/node.asn=64513",
          "kube-router.io/peer.ips=192.0.2.1",
          "kube-router.io/peer.asns=65001",
          ...kc,
        ], print),
        0,
      );
      assert.equal((await annotations())["kube-router.io/node.asn"], "64513");

      // Counts that do not match, a reserved ASN and a typo'd key: all refused, nothing written.
      await assert.rejects(
        runAnnotate(
          ["node", node, "kube-router.io/peer.ips=192.0.2.1,192.0.2.2", "--overwrite", ...kc],
          print,
        ),
        (e: Error) => e instanceof ConfigError && /peer/.test(e.message),
      );
      await assert.rejects(
        runAnnotate(["node", node, "kube-router.io/node.asn=23456", "--overwrite", ...kc], print),
        (e: Error) => e instanceof ConfigError && /node\.asn/.test(e.message),
      );
      await assert.rejects(
        runAnnotate(["node", node, "kube-router.io/node.asnn=1", ...kc], print),
        /unknown annotation "kube-router.io\/node.asnn"; known keys are/,
      );
      await assert.rejects(
        runAnnotate(["node", node, "kube-router.io/node.asn=64514", ...kc], print),
        /already has the value "64513"; pass --overwrite/,
      );
      assert.equal(
        (await annotations())["kube-router.io/peer.ips"],
        "192.0.2.1",
        "a refused change wrote nothing",
      );

      assert.equal(
        await runAnnotate(
          ["node", node, "kube-router.io/peer.ips-", "kube-router.io/peer.asns-", ...kc],
          print,
        ),
        0,
      );
      const after = await annotations();
      assert.equal(after["kube-router.io/peer.ips"], undefined);
      assert.equal(after["kube-router.io/node.asn"], "64513");
    } finally {
      await api.kubectl(["delete", "node", node, "--wait=false"], { okCodes: [0, 1] });
    }
  },
);

Deno.test("annotate: service annotations are checked by the proxy's and router's parsers", opts, async () => {
  const api = await sharedApiServer();
  const ns = `annot-${crypto.randomUUID().slice(0, 8)}`;
  await api.kubectl(["create", "namespace", ns]);
  await api.kubectl(["create", "service", "clusterip", "web", "-n", ns, "--tcp=80:8080"]);
  const kc = ["--kubeconfig", api.kubeconfigPath];
  try {
    await assert.rejects(
      runAnnotate(["service", "web", "-n", ns, "kube-router.io/service.scheduler=fastest", ...kc], () => {}),
      /scheduler/,
    );
    await assert.rejects(
      runAnnotate(
        ["service", "web", "-n", ns, "kube-router.io/service.advertise.clusterip=yes", ...kc],
        () => {},
      ),
      /not a boolean/,
    );
    let out = "";
    assert.equal(
      await runAnnotate([
        "service",
        "web",
        "-n",
        ns,
        "kube-router.io/service.scheduler=mh",
        "kube-router.io/service.schedflags=flag-1,flag-2",
        "--dry-run",
        ...kc,
      ], (s) => (out += s)),
      0,
    );
    assert.match(out, /dry run, not written/);
    assert.equal(
      await runAnnotate(["service", "web", "-n", ns, "kube-router.io/service.scheduler=lc", ...kc], () => {}),
      0,
    );
    const svc = JSON.parse((await api.kubectl(["get", "service", "web", "-n", ns, "-o", "json"])).stdout);
    assert.equal(svc.metadata.annotations["kube-router.io/service.scheduler"], "lc");
    assert.equal(
      svc.metadata.annotations["kube-router.io/service.schedflags"],
      undefined,
      "the dry run wrote nothing",
    );
  } finally {
    await api.kubectl(["delete", "namespace", ns, "--wait=false"], { okCodes: [0, 1] });
  }
});

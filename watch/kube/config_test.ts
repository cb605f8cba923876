import assert from "node:assert/strict";
import { ConfigError } from "../../errors/mod.ts";
import { endpointFromKubeconfig, resolveEndpoint } from "./config.ts";

const b64 = (s: string) => btoa(s);

async function withKubeconfig(
  body: Record<string, unknown>,
  files: Record<string, string>,
  fn: (path: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kr-kubeconfig-" });
  try {
    for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, text);
    // JSON is YAML.
    await Deno.writeTextFile(`${dir}/config`, JSON.stringify(body));
    await fn(`${dir}/config`, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>) {
  return {
    "current-context": "c",
    contexts: [{ name: "other", context: { cluster: "x", user: "x" } }, {
      name: "c",
      context: { cluster: "k", user: "u" },
    }],
    clusters: [{ name: "k", cluster }],
    users: [{ name: "u", user }],
  };
}

Deno.test("kubeconfig: inline data and files relative to the kubeconfig's folder; token", async () => {
  await withKubeconfig(
    kubeconfig(
      { server: "https://10.0.0.1:6443/", "certificate-authority": "ca.pem" },
      { "client-certificate-data": b64("CERT"), "client-key": "key.pem", token: "t0k" },
    ),
    { "ca.pem": "CA", "key.pem": "KEY" },
    async (path) => {
      const ep = await endpointFromKubeconfig(path);
      assert.equal(ep.server, "https://10.0.0.1:6443");
      assert.equal(ep.caPem, "CA");
      assert.equal(ep.certPem, "CERT");
      assert.equal(ep.keyPem, "KEY");
      assert.equal(ep.token, "t0k");
      assert.match(ep.origin, /context c/);
    },
  );
});

Deno.test("kubeconfig: what would connect with less security than configured is refused, naming the field", async () => {
  const cases: Array<[Record<string, unknown>, Record<string, unknown>, RegExp]> = [
    [{ server: "https://a:1", "insecure-skip-tls-verify": true }, {}, /insecure-skip-tls-verify/],
    [{ server: "https://a:1" }, { exec: { command: "aws" } }, /users\[\]\.user\.exec is not supported/],
    [{ server: "https://a:1" }, { "auth-provider": { name: "gcp" } }, /auth-provider/],
    [{ server: "https://a:1" }, { "client-certificate-data": b64("C") }, /needs its key/],
    [{ server: "a:1" }, {}, /must be an https:\/\//],
    [{ server: "no url" }, {}, /not a URL/],
    [{}, {}, /server is missing/],
    [
      { server: "https://a:1", "certificate-authority": "missing.pem" },
      {},
      /certificate-authority .*missing\.pem/,
    ],
  ];
  for (const [cluster, user, re] of cases) {
    await withKubeconfig(kubeconfig(cluster, user), {}, async (path) => {
      await assert.rejects(
        endpointFromKubeconfig(path),
        (e) => e instanceof ConfigError && re.test(e.message),
      );
    });
  }
});

Deno.test("endpoint: --kubeconfig over in-cluster over --master; --master overrides the server", async () => {
  await withKubeconfig(kubeconfig({ server: "https://a:1" }, {}), {}, async (path) => {
    const inCluster = (k: string) => ({ KUBERNETES_SERVICE_HOST: "10.96.0.1" } as Record<string, string>)[k];
    assert.equal((await resolveEndpoint({ kubeconfig: path }, inCluster)).server, "https://a:1");
    assert.equal(
      (await resolveEndpoint({ kubeconfig: path, master: "https://10.0.0.9:6443" }, inCluster)).server,
      "https://10.0.0.9:6443",
    );
  });
  const none = () => undefined;
  assert.equal((await resolveEndpoint({ master: "https://10.0.0.9:6443" }, none)).origin, "--master");
  await assert.rejects(resolveEndpoint({}, none), /no --kubeconfig, no --master/);
});

Deno.test("kubeconfig: a missing file is named once, with its flag", async () => {
  await assert.rejects(
    endpointFromKubeconfig("/nonexistent/kubeconfig"),
    (e) =>
      e instanceof ConfigError && /^--kubeconfig "\/nonexistent\/kubeconfig" cannot be read/.test(e.message),
  );
});

Deno.test("kubeconfig: one outside the plain block subset is read by the full YAML parser", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A flow mapping and an anchor: the block parser gives up, the result must not change.
    const path = `${dir}/kubeconfig`;
    await Deno.writeTextFile(
      path,
      "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n" +
        "clusters:\n- name: c\n  cluster: &c {server: 'https://192.0.2.1:6443/'}\n" +
        "users:\n- name: u\n  user: {token: t0k}\n",
    );
    const e = await endpointFromKubeconfig(path);
    assert.equal(e.server, "https://192.0.2.1:6443");
    assert.equal(e.token, "t0k");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

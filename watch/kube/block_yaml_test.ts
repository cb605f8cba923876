import assert from "node:assert/strict";
import { parse } from "yaml";
import { parseBlockYaml } from "./block_yaml.ts";

const PEM =
  "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUMvakNDQWVhZ0F3SUJBZ0lCQURBTkJna3Foa2lHOXcwQkFRc0ZBREFWTVJNd0VRWURWUVFECg==";

/** kubeconfigs as kubeadm, kubectl (`config view --raw`), kind and our fixtures write them. */
const SAMPLES: Record<string, string> = {
  kubeadm: `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${PEM}
    server: https://192.0.2.10:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: ${PEM}
    client-key-data: ${PEM}
`,
  indentedLists: `# written by a fixture
---
apiVersion: v1
kind: Config
clusters:
  - name: lab
    cluster:
      server: "https://[2001:db8::1]:6443"
      certificate-authority: ca.crt   # relative to this file
contexts:
  - name: lab
    context: {cluster: lab, user: agent}
current-context: 'lab'
users:
  - name: agent
    user:
      tokenFile: /var/run/secrets/token
      token: "a\\"b\\\\c"
      username-hint: 3f9a0c
`,
  crlf:
    "apiVersion: v1\r\nkind: Config\r\ncurrent-context: x\r\ncontexts:\r\n- name: x\r\n  context:\r\n    cluster: c\r\n",
  nulls: "a:\nb: ~\nc: null\nd: true\ne: False\nf: []\ng:\n  - \n  - x\n",
  // A bearer token as our API server fixture writes them (hex, often starting with a digit).
  hexToken: "current-context: x\nusers:\n- name: x\n  user:\n    token: 3f9a0c11e5d2b7a8\n",
};

Deno.test("block yaml: kubeconfigs as tools write them parse without the full parser, to the same values", () => {
  for (const [name, text] of Object.entries(SAMPLES)) {
    let expected: unknown;
    try {
      expected = parse(text);
    } catch {
      expected = undefined;
    }
    const got = parseBlockYaml(text);
    if (name === "indentedLists") {
      // Flow mappings other than {} are left to the full parser.
      assert.equal(got, undefined, name);
      continue;
    }
    assert.notEqual(got, undefined, name);
    assert.deepEqual(got, expected, name);
  }
  assert.deepEqual(
    parseBlockYaml(
      SAMPLES.indentedLists.replace("{cluster: lab, user: agent}", "\n      cluster: lab\n      user: agent"),
    ),
    parse(
      SAMPLES.indentedLists.replace("{cluster: lab, user: agent}", "\n      cluster: lab\n      user: agent"),
    ),
  );
});

Deno.test("block yaml: anything outside the subset is left to the full parser", () => {
  for (
    const text of [
      "a: &x 1\nb: *x\n",
      "a: |\n  text\n",
      "a: >\n  text\n",
      "a: !!str x\n",
      "a: 1\n",
      "a: .inf\n",
      "a: plain\n  continued\n",
      "a: x\na: y\n",
      '"quoted key": x\n',
      "a: [1, 2]\n",
      "a: x\n---\nb: y\n",
      "a:\n\tb: x\n",
      "a: 'unterminated\n",
      'a: "\\u00e9"\n',
      "- a\n- b: c\n  d: e\n- - f\n",
      "",
      "just a scalar\n",
    ]
  ) {
    const got = parseBlockYaml(text);
    if (got === undefined) continue;
    assert.deepEqual(got, parse(text), JSON.stringify(text));
  }
  assert.equal(parseBlockYaml("a: &x 1\nb: *x\n"), undefined);
  assert.equal(parseBlockYaml("a: x\na: y\n"), undefined);
  assert.deepEqual(parseBlockYaml("- a\n- b: c\n  d: e\n- - f\n"), ["a", { b: "c", d: "e" }, ["f"]]);
});

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("block yaml: on 30,000 mutated kubeconfigs, whatever it answers is what the yaml package answers", () => {
  const rand = rng(20261204);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const pieces = [
    " ",
    "  ",
    ":",
    ": ",
    "-",
    "- ",
    "#",
    " #",
    "'",
    '"',
    "{}",
    "[]",
    "{",
    "]",
    "\t",
    "\r",
    "0",
    "1.5",
    "a",
    "~",
    "&a",
    "*a",
    "!",
    "|",
    ">",
    "\\",
    "\n",
    "\n  ",
    "\n- ",
    "null",
    "true",
    "---",
    "?",
    "%",
    "@",
    "é",
  ];
  const bases = Object.values(SAMPLES);
  let answered = 0;
  for (let n = 0; n < 30_000; n++) {
    let text = pick(bases);
    for (let m = 1 + Math.floor(rand() * 3); m > 0; m--) {
      const lines = text.split("\n");
      const at = Math.floor(rand() * lines.length);
      switch (Math.floor(rand() * 5)) {
        case 0: { // insert a piece
          const i = Math.floor(rand() * (text.length + 1));
          text = text.slice(0, i) + pick(pieces) + text.slice(i);
          break;
        }
        case 1: { // delete a few characters
          const i = Math.floor(rand() * text.length);
          text = text.slice(0, i) + text.slice(i + 1 + Math.floor(rand() * 3));
          break;
        }
        case 2: // re-indent a line
          lines[at] = " ".repeat(Math.floor(rand() * 6)) + lines[at].trimStart();
          text = lines.join("\n");
          break;
        case 3: // duplicate a line
          lines.splice(at, 0, lines[at]);
          text = lines.join("\n");
          break;
        default: // swap two lines
          [lines[at], lines[0]] = [lines[0], lines[at]];
          text = lines.join("\n");
      }
    }
    const got = parseBlockYaml(text);
    if (got === undefined) continue;
    answered++;
    let expected: unknown;
    try {
      expected = parse(text);
    } catch (e) {
      assert.fail(
        `answered ${JSON.stringify(got)} where yaml throws (${(e as Error).message}): ${
          JSON.stringify(text)
        }`,
      );
    }
    assert.deepEqual(got, expected, JSON.stringify(text));
  }
  // The mutations must leave a good share inside the subset, or this test checks nothing.
  assert.ok(answered > 5_000, `only ${answered} mutated texts were answered`);
});

import assert from "node:assert/strict";
import { parseListTerse, parseSave, renderSave } from "./save.ts";
import { base32, defaultTempName, renderSwapScript } from "./swap.ts";

const SAMPLE = `create S hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x667de6b0
add S 10.0.0.1
create N hash:net family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x7b847521
add N 2001:db8::/32
add N 2001:db8:1::/48 nomatch
`;

Deno.test("ipset parseSave ↔ renderSave round-trip", () => {
  const sets = parseSave(SAMPLE);
  assert.equal(sets.length, 2);
  assert.deepEqual(sets[1].entries, ["2001:db8::/32", "2001:db8:1::/48 nomatch"]);
  assert.equal(renderSave(sets), SAMPLE);
});

Deno.test("parseListTerse reads names, types and counts", () => {
  const h = parseListTerse(`Name: S
Type: hash:ip
Revision: 6
Header: family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x667de6b0
Size in memory: 256
References: 2
Number of entries: 1

Name: N
Type: hash:net
Revision: 7
Header: family inet6 hashsize 1024 maxelem 65536
Size in memory: 1384
References: 0
Number of entries: 2
`);
  assert.deepEqual(h.map((x) => [x.name, x.type, x.references, x.entries]), [
    ["S", "hash:ip", 2, 1],
    ["N", "hash:net", 0, 2],
  ]);
});

Deno.test("base32 matches RFC 4648 vectors", () => {
  const enc = (s: string) => base32(new TextEncoder().encode(s));
  assert.equal(enc("f"), "MY");
  assert.equal(enc("fo"), "MZXQ");
  assert.equal(enc("foobar"), "MZXW6YTBOI");
});

Deno.test("renderSwapScript: new sets created directly, existing ones filled under a temp name and swapped", () => {
  const tmp = defaultTempName("OLD");
  const script = renderSwapScript({
    sets: [
      { name: "NEW", type: "hash:ip", options: ["family", "inet"], entries: ["10.0.0.1"] },
      { name: "OLD", type: "hash:ip", options: ["family", "inet"], entries: ["10.0.0.2", "10.0.0.3"] },
    ],
    existing: new Map([["OLD", { type: "hash:ip", family: "inet" }], ["GONE", { type: "hash:ip" }]]),
    destroy: ["GONE"],
  });
  assert.equal(
    script,
    `create NEW hash:ip family inet
add NEW 10.0.0.1
create ${tmp} hash:ip family inet
add ${tmp} 10.0.0.2
add ${tmp} 10.0.0.3
swap ${tmp} OLD
destroy ${tmp}
destroy GONE
`,
  );
  assert.ok(tmp.length <= 31);
});

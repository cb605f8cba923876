/** `--help` text and the limits flag errors print. No addresses. */
import assert from "node:assert/strict";
import { usage } from "./help.ts";
import { parseFlags } from "./flag_parse.ts";

Deno.test("help: a zero duration shows no pflag default next to upstream's own '(default: 0s)'", () => {
  const text = usage();
  assert.doesNotMatch(text, /\(default: 0s\) \(default 0s\)/);
  const line = text.split("\n").find((l) => l.includes("--service-tcp-timeout"))!;
  assert.match(line, /\(default: 0s\)$/);
  // Non-zero durations keep pflag's suffix.
  assert.match(text.split("\n").find((l) => l.includes("--ipvs-sync-period"))!, /\(default 5m0s\)$/);
});

Deno.test("flags: the uint64 limit prints exactly, and 2^64 is refused", () => {
  assert.throws(
    () => parseFlags(["--cluster-asn=18446744073709551616"], () => undefined),
    /from 0 to 18446744073709551615$/,
  );
  assert.equal(parseFlags(["--cluster-asn=0x10"], () => undefined).options.clusterAsn, 16);
  assert.equal(parseFlags(["--cluster-asn=010"], () => undefined).options.clusterAsn, 8);
});

import assert from "node:assert/strict";
import { canonicalIp, parseCidr } from "./ip.ts";

Deno.test("proxy ip: API addresses with leading-zero octets read as decimal, like Kubernetes' ParseIPSloppy", () => {
  assert.equal(canonicalIp("010.096.000.010"), "10.96.0.10");
  assert.equal(canonicalIp("2001:DB8::0001"), "2001:db8::1");
  assert.deepEqual(parseCidr("010.096.0.0/12")?.len, 12);
  assert.equal(canonicalIp("10.96.0.256"), undefined);
});

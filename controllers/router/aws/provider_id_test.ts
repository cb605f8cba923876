/** providerID parsing: AWS forms, zones of every kind, non-AWS ids skipped, malformed ones named. */
import assert from "node:assert/strict";
import { parseAwsProviderId, ProviderIdError, regionOfZone } from "./provider_id.ts";

Deno.test("providerID: aws:///zone/id gives instance, zone and region", () => {
  assert.deepEqual(parseAwsProviderId("aws:///us-east-1a/i-0123456789abcdef0"), {
    instanceId: "i-0123456789abcdef0",
    availabilityZone: "us-east-1a",
    region: "us-east-1",
  });
  assert.deepEqual(parseAwsProviderId("aws://eu-west-3c/i-0abcdef1"), {
    instanceId: "i-0abcdef1",
    availabilityZone: "eu-west-3c",
    region: "eu-west-3",
  });
  assert.deepEqual(parseAwsProviderId("aws:///i-0123456789abcdef0"), { instanceId: "i-0123456789abcdef0" });
});

Deno.test("providerID: regions of standard, GovCloud, China, Local Zone and Wavelength zones", () => {
  assert.equal(regionOfZone("us-east-1a"), "us-east-1");
  assert.equal(regionOfZone("ap-southeast-2b"), "ap-southeast-2");
  assert.equal(regionOfZone("us-gov-west-1a"), "us-gov-west-1");
  assert.equal(regionOfZone("cn-north-1a"), "cn-north-1");
  assert.equal(regionOfZone("us-west-2-lax-1a"), "us-west-2");
  assert.equal(regionOfZone("us-east-1-wl1-bos-wlz-1"), "us-east-1");
  assert.equal(regionOfZone("us-east-1"), undefined, "a region is not a zone");
  assert.equal(regionOfZone("nowhere"), undefined);
});

Deno.test("providerID: non-AWS ids are null (skipped), malformed AWS ids throw with the value", () => {
  for (const id of ["", "gce://project/zone/vm", "kind://docker/kind/kind-control-plane", "azure:///x"]) {
    assert.equal(parseAwsProviderId(id), null, id);
  }
  for (
    const id of [
      "aws:/us-east-1a/i-0123456789abcdef0",
      "aws:///us-east-1a/vm-1",
      "aws:///",
      "aws:///x/y/i-01234567",
    ]
  ) {
    assert.throws(() => parseAwsProviderId(id), (e: Error) => {
      assert.ok(e instanceof ProviderIdError);
      assert.ok(e.message.includes(JSON.stringify(id)), e.message);
      assert.match(e.message, /expected aws:\/\/\/<availability-zone>\/<instance-id>/);
      return true;
    });
  }
  assert.throws(() => parseAwsProviderId("aws:///moon-1/i-0123456789abcdef0"), /availability zone "moon-1"/);
});

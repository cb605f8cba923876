/**
 * `spec.providerID` of an EC2 node: `aws:///<availability zone>/<instance id>` (the cloud
 * provider's form; `aws://<zone>/<id>` and `aws:///<id>` also occur).
 *
 * @module
 */

/** An EC2 instance named by a node. `region` is derived from the zone, when there is one. */
export interface AwsInstanceRef {
  instanceId: string;
  availabilityZone?: string;
  region?: string;
}

/** A providerID that says `aws` but cannot be read. */
export class ProviderIdError extends Error {
  override name = "ProviderIdError";
}

/** Whether the node is an AWS one at all (upstream: providerID starts with "aws"). */
export function isAwsProviderId(providerID: string): boolean {
  return providerID.startsWith("aws");
}

const INSTANCE_ID = /^i-[0-9a-f]{8}([0-9a-f]{9})?$/;
// Region = the zone's leading "<area>-<...>-<n>": us-east-1a, us-gov-west-1b,
// us-west-2-lax-1a (Local Zone), us-east-1-wl1-bos-wlz-1 (Wavelength), cn-north-1a.
const REGION_OF_ZONE = /^([a-z]{2}(?:-[a-z]+)+?-\d+)(?:[a-z]|-.+)$/;

/** The region an availability zone belongs to, or undefined when the name is not a zone. */
export function regionOfZone(zone: string): string | undefined {
  return REGION_OF_ZONE.exec(zone)?.[1];
}

/**
 * Parses an AWS providerID. Returns null for a non-AWS one (not ours to touch); throws a
 * `ProviderIdError` naming the value and the accepted form for a malformed AWS one.
 */
export function parseAwsProviderId(providerID: string): AwsInstanceRef | null {
  if (!isAwsProviderId(providerID)) return null;
  const bad = (why: string) =>
    new ProviderIdError(
      `providerID ${JSON.stringify(providerID)}: ${why}; expected aws:///<availability-zone>/<instance-id>`,
    );
  const m = /^aws:\/\/(.*)$/.exec(providerID);
  if (!m) throw bad("no aws:// scheme");
  const parts = m[1].split("/").filter((p) => p !== "");
  if (parts.length === 0 || parts.length > 2) throw bad(`${parts.length} path segments`);
  const instanceId = parts[parts.length - 1];
  if (!INSTANCE_ID.test(instanceId)) {
    throw bad(`instance id ${JSON.stringify(instanceId)} is not i-<8 or 17 hex>`);
  }
  if (parts.length === 1) return { instanceId };
  const availabilityZone = parts[0];
  const region = regionOfZone(availabilityZone);
  if (!region) throw bad(`availability zone ${JSON.stringify(availabilityZone)} names no region`);
  return { instanceId, availabilityZone, region };
}

/**
 * AWS support of the routing controller (`--disable-source-dest-check`), without an AWS SDK:
 * providerID parsing, IMDSv2 credentials, SigV4 on WebCrypto, one EC2 Query API call.
 *
 * @module
 */
export {
  type NodeOutcome,
  SourceDestCheck,
  type SourceDestCheckDeps,
  type SourceDestCheckOptions,
} from "./source_dest_check.ts";
export { type AwsInstanceRef, parseAwsProviderId, ProviderIdError, regionOfZone } from "./provider_id.ts";
export { disableSourceDestCheck, EC2_API_VERSION, Ec2Error, modifySourceDestCheckBody } from "./ec2.ts";
export { CredentialSource, ImdsError } from "./imds.ts";
export { type AwsCredentials, signRequest } from "./sigv4.ts";
export type { Env } from "./env.ts";

/**
 * The environment variables we read, named as the AWS CLI/SDKs name them, behind a function so
 * tests and the lab pass their own.
 *
 * @module
 */

/** Reads one environment variable. */
export type Env = (name: string) => string | undefined;

/** `Deno.env.get`, answering undefined when the process may not read the environment. */
export const processEnv: Env = (name) => {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
};

/** Default instance metadata endpoint (IPv4 link-local). */
export const DEFAULT_IMDS_ENDPOINT = "http://169.254.169.254";

/** `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else the link-local default. */
export function imdsEndpoint(env: Env): string {
  return (env("AWS_EC2_METADATA_SERVICE_ENDPOINT") ?? DEFAULT_IMDS_ENDPOINT).replace(/\/+$/, "");
}

/** `AWS_EC2_METADATA_DISABLED=true` turns IMDS off, as in the CLI. */
export function imdsDisabled(env: Env): boolean {
  return (env("AWS_EC2_METADATA_DISABLED") ?? "").toLowerCase() === "true";
}

/** `AWS_REGION`, else `AWS_DEFAULT_REGION`. */
export function envRegion(env: Env): string | undefined {
  return env("AWS_REGION") ?? env("AWS_DEFAULT_REGION");
}

/**
 * The EC2 endpoint: `AWS_ENDPOINT_URL_EC2`, else `AWS_ENDPOINT_URL`, else the regional one
 * (`.amazonaws.com.cn` in the China partition).
 */
export function ec2Endpoint(env: Env, region: string): string {
  const o = env("AWS_ENDPOINT_URL_EC2") ?? env("AWS_ENDPOINT_URL");
  if (o) return o.replace(/\/+$/, "");
  return `https://ec2.${region}.amazonaws.com${region.startsWith("cn-") ? ".cn" : ""}`;
}

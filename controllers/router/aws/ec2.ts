/**
 * The one EC2 Query API call we make: `ModifyInstanceAttribute` with
 * `SourceDestCheck.Value=false` (API version 2016-11-15), `POST /` form-encoded, SigV4-signed.
 *
 * @module
 */
import type { Fetch } from "./imds.ts";
import { type AwsCredentials, signRequest } from "./sigv4.ts";

/** EC2 API version of the Query protocol. */
export const EC2_API_VERSION = "2016-11-15";

/** EC2 answered with an error (or not at all). `code` is AWS's error code when there is one. */
export class Ec2Error extends Error {
  override name = "Ec2Error";
  constructor(
    message: string,
    readonly status: number | null,
    readonly code: string | null,
    readonly requestId: string | null,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What one call needs. */
export interface ModifyCall {
  endpoint: string;
  region: string;
  credentials: AwsCredentials;
  instanceId: string;
  fetch?: Fetch;
  now?: Date;
  timeoutMs?: number;
}

/** The form body, parameters in name order (as the SDKs send them). */
export function modifySourceDestCheckBody(instanceId: string): string {
  return new URLSearchParams([
    ["Action", "ModifyInstanceAttribute"],
    ["InstanceId", instanceId],
    ["SourceDestCheck.Value", "false"],
    ["Version", EC2_API_VERSION],
  ]).toString();
}

const tag = (xml: string, name: string): string | null => {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  return m ? m[1].trim() : null;
};

/** AWS's error XML (`<Response><Errors><Error><Code>…`): code, message, request id. */
export function parseEc2Error(
  xml: string,
): { code: string | null; message: string | null; requestId: string | null } {
  return {
    code: tag(xml, "Code"),
    message: tag(xml, "Message"),
    requestId: tag(xml, "RequestID") ?? tag(xml, "RequestId"),
  };
}

/** Disables the source/destination check of one instance; throws `Ec2Error`. */
export async function disableSourceDestCheck(c: ModifyCall): Promise<void> {
  const url = new URL(c.endpoint.replace(/\/*$/, "/"));
  const body = modifySourceDestCheckBody(c.instanceId);
  const signed = await signRequest({
    method: "POST",
    url,
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body,
    credentials: c.credentials,
    region: c.region,
    service: "ec2",
    now: c.now ?? new Date(),
  });
  const what = `EC2 ModifyInstanceAttribute ${c.instanceId} at ${url.origin}`;
  let res: Response;
  try {
    res = await (c.fetch ?? fetch)(url, {
      method: "POST",
      headers: signed.headers,
      body,
      signal: AbortSignal.timeout(c.timeoutMs ?? 15_000),
    });
  } catch (e) {
    throw new Ec2Error(`${what}: ${(e as Error).message}`, null, null, null, { cause: e });
  }
  const text = await res.text();
  if (!res.ok) {
    const err = parseEc2Error(text);
    throw new Ec2Error(
      `${what}: HTTP ${res.status} ${err.code ?? "(no error code)"}: ${err.message ?? text.slice(0, 120)}${
        err.requestId ? ` (request ${err.requestId})` : ""
      }`,
      res.status,
      err.code,
      err.requestId,
    );
  }
  if (tag(text, "return") !== "true") {
    throw new Ec2Error(
      `${what}: HTTP ${res.status} without <return>true</return>: ${text.slice(0, 120)}`,
      res.status,
      null,
      tag(text, "requestId"),
    );
  }
}

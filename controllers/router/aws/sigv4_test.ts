/**
 * SigV4 against AWS's published vectors: the "aws-sig-v4-test-suite" cases get-vanilla,
 * get-vanilla-query-order-key-case, post-x-www-form-urlencoded and
 * post-x-www-form-urlencoded-parameters (credentials AKIDEXAMPLE /
 * wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1, service "service", 20150830T123600Z), and
 * the worked IAM ListUsers example of the AWS General Reference (signing key, canonical request
 * hash, signature). Expected values are the published ones, not values this code produced.
 */
import assert from "node:assert/strict";
import {
  amzDate,
  canonicalHeaders,
  canonicalQuery,
  sha256Hex,
  signingKey,
  signRequest,
  toHex,
  uriEncode,
} from "./sigv4.ts";

const creds = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
const now = new Date(Date.UTC(2015, 7, 30, 12, 36, 0));
const suite = { credentials: creds, region: "us-east-1", service: "service", now };
const authz = (signed: string, sig: string) =>
  `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=${signed}, Signature=${sig}`;

Deno.test("sigv4: get-vanilla (canonical request, string to sign, authorization)", async () => {
  const r = await signRequest({ ...suite, method: "GET", url: new URL("https://example.amazonaws.com/") });
  assert.equal(
    r.canonicalRequest,
    "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    r.stringToSign,
    "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n" +
      "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
  );
  assert.equal(
    r.headers["authorization"],
    authz("host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
  );
  assert.equal(r.headers["x-amz-date"], "20150830T123600Z");
  assert.equal(r.headers["host"], "example.amazonaws.com");
});

Deno.test("sigv4: get-vanilla-query-order-key-case (parameters sorted)", async () => {
  const r = await signRequest({
    ...suite,
    method: "GET",
    url: new URL("https://example.amazonaws.com/?Param2=value2&Param1=value1"),
  });
  assert.equal(r.canonicalRequest.split("\n")[2], "Param1=value1&Param2=value2");
  assert.equal(r.signature, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
});

Deno.test("sigv4: post-x-www-form-urlencoded (body hashed, content-type signed)", async () => {
  const r = await signRequest({
    ...suite,
    method: "POST",
    url: new URL("https://example.amazonaws.com/"),
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "Param1=value1",
  });
  assert.equal(
    r.canonicalRequest,
    "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n" +
      "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n" +
      "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
  );
  assert.equal(
    r.stringToSign,
    "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n" +
      "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
  );
  assert.equal(
    r.headers["authorization"],
    authz("content-type;host;x-amz-date", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
  );
});

Deno.test("sigv4: post-x-www-form-urlencoded-parameters (charset in content-type)", async () => {
  const r = await signRequest({
    ...suite,
    method: "POST",
    url: new URL("https://example.amazonaws.com/"),
    headers: { "Content-Type": "application/x-www-form-urlencoded; charset=utf8" },
    body: new TextEncoder().encode("Param1=value1"),
  });
  assert.equal(
    r.stringToSign.split("\n")[3],
    "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
  );
  assert.equal(
    r.headers["authorization"],
    authz("content-type;host;x-amz-date", "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"),
  );
});

Deno.test("sigv4: AWS General Reference worked example (IAM ListUsers): signing key, request hash, signature", async () => {
  const key = await signingKey(creds.secretAccessKey, "20150830", "us-east-1", "iam");
  assert.equal(toHex(key), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
  const r = await signRequest({
    credentials: creds,
    region: "us-east-1",
    service: "iam",
    now,
    method: "GET",
    url: new URL("https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08"),
    headers: { "Content-Type": "application/x-www-form-urlencoded; charset=utf-8" },
  });
  assert.equal(
    await sha256Hex(r.canonicalRequest),
    "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59",
  );
  assert.equal(r.signature, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
  assert.equal(
    r.headers["authorization"],
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, " +
      "SignedHeaders=content-type;host;x-amz-date, " +
      "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
  );
});

Deno.test("sigv4: session token is a signed header; encoding and header rules", async () => {
  const r = await signRequest({
    ...suite,
    credentials: { ...creds, sessionToken: "TOKEN/with+chars" },
    method: "GET",
    url: new URL("https://example.amazonaws.com/"),
  });
  assert.equal(r.headers["x-amz-security-token"], "TOKEN/with+chars");
  assert.match(r.headers["authorization"], /SignedHeaders=host;x-amz-date;x-amz-security-token,/);
  assert.equal(uriEncode("a~z-_. /+é"), "a~z-_.%20%2F%2B%C3%A9");
  assert.equal(uriEncode("/a b", true), "/a%20b");
  assert.equal(canonicalQuery("?b=2%203&a=x/y&a=1"), "a=1&a=x%2Fy&b=2%203");
  assert.deepEqual(canonicalHeaders({ "My-Header": "  a  b   c ", Host: "h" }), {
    text: "host:h\nmy-header:a b c\n",
    signed: "host;my-header",
  });
  assert.equal(amzDate(new Date("2026-01-02T03:04:05.678Z")), "20260102T030405Z");
});

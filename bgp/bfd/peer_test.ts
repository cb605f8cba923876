import assert from "node:assert/strict";
import { bfdOptionsFor } from "./peer.ts";

Deno.test("bfd peer: options from a BGP peer's bfd block", () => {
  assert.equal(bfdOptionsFor({ address: "192.0.2.1" }), null);
  assert.equal(bfdOptionsFor({ address: "192.0.2.1", bfd: { enabled: false, port: 1 } }), null);
  assert.deepEqual(
    bfdOptionsFor({
      address: "192.0.2.1",
      localAddress: "192.0.2.2",
      bfd: { enabled: true, port: 3785, desiredMinTxMs: 300, requiredMinRxMs: 200, detectMultiplier: 5 },
    }),
    { localAddress: "192.0.2.2", port: 3785, desiredMinTxMs: 300, requiredMinRxMs: 200, detectMultiplier: 5 },
  );
  assert.deepEqual(bfdOptionsFor({ address: "192.0.2.1", bfd: { enabled: true } }), {});
});

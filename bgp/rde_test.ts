// Unit tests of the UPDATE → RIB adapter (rde.ts): which RIB inputs one UPDATE becomes.
// Addresses: 192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32, fe80::/10.
import assert from "node:assert/strict";
import { AFI, MessageType, type UpdateMessage } from "./codec/types.ts";
import { parsePrefix } from "./prefix.ts";
import { ribInputs } from "./rde.ts";

const p = (s: string) => parsePrefix(s)!;
const base: UpdateMessage = { type: MessageType.Update, withdrawn: [], attrs: {}, nlri: [] };
const v4 = [AFI.IPv4];
const both = [AFI.IPv4, AFI.IPv6];

Deno.test("rde: withdrawals and IPv4 NLRI become withdraw then announce", () => {
  const m: UpdateMessage = {
    ...base,
    withdrawn: [p("10.1.0.0/16")],
    attrs: { origin: 0, asPath: [], nextHop: "192.0.2.1" },
    nlri: [p("10.2.0.0/16")],
  };
  const { inputs, error } = ribInputs(m, { families: v4 });
  assert.equal(error, undefined);
  assert.deepEqual(inputs, [
    { kind: "withdraw", prefixes: [p("10.1.0.0/16")] },
    { kind: "announce", prefixes: [p("10.2.0.0/16")], attrs: m.attrs },
  ]);
  // IPv4 NLRI without a NEXT_HOP, or with IPv4 not negotiated, announce nothing.
  assert.deepEqual(ribInputs({ ...m, withdrawn: [], attrs: { origin: 0 } }, { families: v4 }).inputs, []);
  assert.deepEqual(ribInputs({ ...m, withdrawn: [] }, { families: [AFI.IPv6] }).inputs, []);
});

Deno.test("rde: MP_REACH next hops: global + link-local, link-local only, families filtered", () => {
  const mp = (nextHops: string[]): UpdateMessage => ({
    ...base,
    attrs: { origin: 0, asPath: [] },
    mpReach: { afi: AFI.IPv6, safi: 1, nextHops, nlri: [p("2001:db8:1::/48")] },
  });
  const attrsOf = (m: UpdateMessage) => {
    const i = ribInputs(m, { families: both }).inputs[0];
    assert.ok(i?.kind === "announce");
    return i.attrs;
  };
  assert.equal(attrsOf(mp(["2001:db8::1", "fe80::1"])).nextHop, "2001:db8::1");
  assert.equal(attrsOf(mp(["2001:db8::1", "fe80::1"])).nextHopLinkLocal, "fe80::1");
  // RFC 2545 §3: a link-local-only next hop is kept as both.
  assert.deepEqual(
    [attrsOf(mp(["fe80::2"])).nextHop, attrsOf(mp(["fe80::2"])).nextHopLinkLocal],
    ["fe80::2", "fe80::2"],
  );
  assert.equal(attrsOf(mp(["::", "fe80::3"])).nextHop, "fe80::3");
  assert.deepEqual(ribInputs(mp(["2001:db8::1"]), { families: v4 }).inputs, []);
  const unreach: UpdateMessage = {
    ...base,
    mpUnreach: { afi: AFI.IPv6, safi: 1, withdrawn: [p("2001:db8:2::/48")] },
  };
  assert.deepEqual(ribInputs(unreach, { families: both }).inputs, [
    { kind: "withdraw", prefixes: [p("2001:db8:2::/48")] },
  ]);
  assert.deepEqual(ribInputs(unreach, { families: v4 }).inputs, []);
});

Deno.test("rde: treat-as-withdraw withdraws every prefix the UPDATE carries; End-of-RIB passes through", () => {
  const m: UpdateMessage = {
    ...base,
    treatAsWithdraw: true,
    withdrawn: [p("10.1.0.0/16")],
    attrs: { origin: 0, asPath: [], nextHop: "192.0.2.1" },
    nlri: [p("10.2.0.0/16")],
    mpReach: { afi: AFI.IPv6, safi: 1, nextHops: ["2001:db8::1"], nlri: [p("2001:db8:1::/48")] },
  };
  assert.deepEqual(ribInputs(m, { families: v4 }).inputs, [
    { kind: "withdraw", prefixes: [p("10.1.0.0/16"), p("10.2.0.0/16"), p("2001:db8:1::/48")] },
  ]);
  assert.deepEqual(ribInputs(base, { families: v4 }).inputs, [{ kind: "end-of-rib", afi: AFI.IPv4 }]);
  const eor6: UpdateMessage = { ...base, mpUnreach: { afi: AFI.IPv6, safi: 1, withdrawn: [] } };
  assert.deepEqual(ribInputs(eor6, { families: both }).inputs, [{ kind: "end-of-rib", afi: AFI.IPv6 }]);
});

Deno.test("rde: the session checks (RFC 7606) turn an UPDATE whose next hop is our address into a withdrawal", () => {
  const m: UpdateMessage = {
    ...base,
    attrs: { origin: 0, asPath: [{ type: 2, asns: [65001] }], nextHop: "192.0.2.9" },
    nlri: [p("10.3.0.0/16")],
  };
  const session = { peerAs: 65001, ebgp: true, localAddress: "192.0.2.9" };
  const r = ribInputs(m, { families: v4, session });
  assert.ok(r.error);
  assert.deepEqual(r.inputs, [{ kind: "withdraw", prefixes: [p("10.3.0.0/16")] }]);
  const ok = ribInputs(m, { families: v4, session: { ...session, localAddress: "198.51.100.1" } });
  assert.equal(ok.error, undefined);
  assert.equal(ok.inputs[0].kind, "announce");
});

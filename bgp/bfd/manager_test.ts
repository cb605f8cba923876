/**
 * Two BfdManagers over loopback in the test's own namespace: 127.0.0.1 ⇄ 127.0.0.2 on a test
 * port (not 3784, so nothing else on the machine is touched). Loopback delivers TTL 255
 * untouched, so the GTSM check runs for real. The namespace tests (bgp_bfd_*) cut real links.
 */
import assert from "node:assert/strict";
import { BfdManager, resolveTiming } from "./mod.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await wait(10);
  }
}

Deno.test("bfd manager: options are validated all at once", () => {
  assert.throws(
    () => resolveTiming({ desiredMinTxMs: 0, detectMultiplier: 0 }),
    /desiredMinTx is 0 µs.*detectMultiplier is 0; accepted: 1–255/,
  );
  assert.deepEqual(resolveTiming({}), {
    desiredMinTxUs: 1_000_000,
    requiredMinRxUs: 1_000_000,
    detectMult: 3,
  });
});

Deno.test(
  "bfd manager: two managers on loopback come Up, and Down when one side goes away",
  OPTS,
  async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const a = new BfdManager();
    const b = new BfdManager();
    const events: string[] = [];
    try {
      a.onUp((p) => events.push(`up ${p}`));
      a.onDown((p, diag) => events.push(`down ${p} ${diag}`));
      const opts = { port, desiredMinTxMs: 50, requiredMinRxMs: 50, detectMultiplier: 3 };
      a.add("127.0.0.2", { ...opts, localAddress: "127.0.0.1" });
      b.add("127.0.0.1", { ...opts, localAddress: "127.0.0.2" });
      await until("both Up", () => a.state("127.0.0.2") === "Up" && b.state("127.0.0.1") === "Up");
      assert.deepEqual(events, ["up 127.0.0.2"]);
      const s = a.sessions()[0];
      assert.equal(s.detectionTimeMs, 150);
      assert.ok(s.packetsIn > 0 && s.ttlDrops === 0);
      const t0 = performance.now();
      b.close(); // sends AdminDown → A goes Down with diag 3 at once
      await until("A Down", () => a.state("127.0.0.2") === "Down");
      assert.ok(performance.now() - t0 < 100);
      assert.deepEqual(events, ["up 127.0.0.2", "down 127.0.0.2 3"]);
    } finally {
      a.close();
      b.close();
    }
  },
);

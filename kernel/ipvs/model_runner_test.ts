import assert from "node:assert/strict";
import { ExecError, type Runner } from "../exec.ts";
import { restoreIpvs } from "./apply.ts";
import { IpvsModelRunner } from "./model_runner.ts";

const none: Runner = { run: () => Promise.reject(new Error("no other command here")) };

Deno.test("ipvsadm -R as ipvsadm runs it: a refused line in the middle exits 0, its message on stderr", async () => {
  const r = new IpvsModelRunner(none);
  r.model.missingSchedulers.add("mh");
  const batch = "-A -t 10.0.0.1:80 -s mh\n-A -t 10.0.0.2:80 -s rr\n";
  const out = await r.run(["ipvsadm", "-R"], { stdin: batch });
  assert.equal(out.code, 0);
  assert.match(out.stderr, /Scheduler or persistence engine not found/);
  assert.deepEqual(r.model.services(), ["tcp/10.0.0.2:80"], "the batch went on after the refused line");
  // restoreIpvs counts any stderr as a refusal.
  await assert.rejects(restoreIpvs(r, "-A -t 10.0.0.3:80 -s mh\n-A -t 10.0.0.4:80 -s rr\n"), ExecError);
  // The last line refused: exit status 1.
  await assert.rejects(r.run(["ipvsadm", "-R"], { stdin: "-A -t 10.0.0.5:80 -s mh\n" }), ExecError);
  // ipvsadm's own check ends the batch at once (exit 2).
  await assert.rejects(
    r.run(["ipvsadm", "-R"], { stdin: "-A -t 10.0.0.6:0 -s rr\n-A -t 10.0.0.7:80 -s rr\n" }),
    (e: ExecError) => e.code === 2 && /Zero port/.test(e.stderr),
  );
  assert.ok(!r.model.table.has("tcp/10.0.0.7:80"));
});

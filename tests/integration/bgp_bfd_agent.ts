/**
 * Runs our BfdManager inside a test namespace (started through `ip netns exec` by the
 * bgp_bfd_* tests). Prints one JSON line per event on stdout: `started`, `state` (with the
 * wall-clock time in ms, so the test can measure detection against the moment it cut a link),
 * `status` (answer to the `status` command). stdin: `status`, `remove <peer>`; EOF stops.
 *
 * Usage: deno run --allow-ffi bgp_bfd_agent.ts '{"peers":[{"peer":"10.234.0.2","desiredMinTxMs":100,...}]}'
 *
 * @module
 */
import { BfdManager, type BfdPeerOptions } from "../../bgp/bfd/mod.ts";

const opts: { peers: Array<BfdPeerOptions & { peer: string }> } = JSON.parse(Deno.args[0]);
const emit = (event: string, f: Record<string, unknown> = {}) => console.log(JSON.stringify({ event, ...f }));

const m = new BfdManager({
  log: (level, msg, fields) => {
    if (level !== "debug") console.error(JSON.stringify({ level, msg, ...fields }));
  },
});
m.onStateChange((ev) => emit("state", { ...ev, at: Date.now() }));
try {
  for (const p of opts.peers) m.add(p.peer, p);
  emit("started");
} catch (err) {
  emit("error", { message: String(err) });
}

let buf = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buf += chunk;
  let nl;
  while ((nl = buf.indexOf("\n")) >= 0) {
    const [cmd, arg] = buf.slice(0, nl).trim().split(" ");
    buf = buf.slice(nl + 1);
    if (cmd === "status") emit("status", { sessions: m.sessions() });
    else if (cmd === "remove") {
      m.remove(arg);
      emit("removed", { peer: arg });
    }
  }
}
m.close();

/**
 * Runs a `BgpSpeaker` whose peer has `bfd: { enabled: true, ... }` inside a test namespace: the
 * speaker itself owns the BFD session (no wiring here, unlike `bgp_bfd_speaker_agent.ts`).
 * Prints JSON lines: `started`; `bgp` whenever the peer's BGP state or BFD state changes (polled
 * every 5 ms, wall-clock `at`); `status` (answer to the `status` command: `peers()` and
 * `bfdSessions()`). A line `update <json PeerConfig>` calls `updatePeer`, `remove` calls
 * `removePeer`. EOF on stdin stops.
 *
 * Usage: deno run --allow-ffi --allow-net --allow-read bgp_bfd_speaker_owned_agent.ts \
 *   '{"speaker":{...},"peer":{...}}'
 *
 * @module
 */
import { BgpSpeaker, type PeerConfig, type SpeakerConfig } from "../../bgp/mod.ts";

const o: { speaker: SpeakerConfig; peer: PeerConfig } = JSON.parse(Deno.args[0]);
const emit = (event: string, f: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ event, at: Date.now(), ...f }));

const speaker = new BgpSpeaker({
  ...o.speaker,
  log: (level, msg, fields) => {
    if (level !== "debug") console.error(JSON.stringify({ level, msg, ...fields }));
  },
});
await speaker.start();
speaker.addPeer(o.peer);
emit("started");

let last = "";
const poll = setInterval(() => {
  const p = speaker.peers()[0];
  const now = p ? `${p.state}/${p.bfd ?? "-"}` : "removed";
  if (now !== last) {
    last = now;
    emit("bgp", { state: p?.state, bfd: p?.bfd, lastError: p?.lastError });
  }
}, 5);

let buf = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buf += chunk;
  let nl;
  while ((nl = buf.indexOf("\n")) >= 0) {
    const cmd = buf.slice(0, nl).trim();
    buf = buf.slice(nl + 1);
    if (cmd === "status") emit("status", { peers: speaker.peers(), bfd: speaker.bfdSessions() });
    else if (cmd.startsWith("update ")) speaker.updatePeer(JSON.parse(cmd.slice(7)));
    else if (cmd === "remove") await speaker.removePeer(o.peer.address);
  }
}
clearInterval(poll);
await speaker.stop();

/**
 * Runs a `BgpSpeaker` and a `BfdManager` wired together as the routing controller would
 * (BFD Down → `speaker.peerDown`, RFC 5882) inside a test namespace. Prints JSON lines:
 * `started`, `bfd` (state change, wall-clock `at`), `status` (answer to the `status` command:
 * BGP peers and BFD sessions, with `at`). EOF on stdin stops.
 *
 * Usage: deno run -A bgp_bfd_speaker_agent.ts '{"speaker":{...},"peer":{...},"bfd":{...}}'
 *
 * @module
 */
import { BgpSpeaker, type PeerConfig, type SpeakerConfig } from "../../bgp/mod.ts";
import { BfdManager, type BfdPeerOptions, bindBfdToBgp } from "../../bgp/bfd/mod.ts";

const o: { speaker: SpeakerConfig; peer: PeerConfig; bfd: BfdPeerOptions } = JSON.parse(Deno.args[0]);
const emit = (event: string, f: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ event, at: Date.now(), ...f }));

const speaker = new BgpSpeaker({
  ...o.speaker,
  log: (level, msg, fields) => {
    if (level !== "debug") console.error(JSON.stringify({ level, msg, ...fields }));
  },
});
const bfd = new BfdManager();
bfd.onStateChange((ev) => emit("bfd", { ...ev }));
bindBfdToBgp(bfd, speaker);
await speaker.start();
speaker.addPeer(o.peer);
bfd.add(o.peer.address, o.bfd);
emit("started");

let buf = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buf += chunk;
  let nl;
  while ((nl = buf.indexOf("\n")) >= 0) {
    const cmd = buf.slice(0, nl).trim();
    buf = buf.slice(nl + 1);
    if (cmd === "status") emit("status", { peers: speaker.peers(), bfd: bfd.sessions() });
  }
}
bfd.close();
await speaker.stop();

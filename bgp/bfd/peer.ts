/**
 * The glue between a BGP peer's configuration and a BFD session (RFC 5882): which options a
 * peer's `bfd` block means, and the wiring that drops the BGP session when BFD goes Down.
 *
 * @module
 */
import type { BfdManager, BfdPeerOptions } from "./manager.ts";

/** The parts of a BGP `PeerConfig` that BFD reads (structural, so bgp/ need not import us). */
export interface BfdPeerConfig {
  address: string;
  localAddress?: string;
  bfd?: {
    enabled: boolean;
    port?: number;
    desiredMinTxMs?: number;
    requiredMinRxMs?: number;
    detectMultiplier?: number;
  };
}

/** The BFD options for a peer, or null when the peer does not ask for BFD. */
export function bfdOptionsFor(p: BfdPeerConfig): BfdPeerOptions | null {
  if (!p.bfd?.enabled) return null;
  const o: BfdPeerOptions = {};
  if (p.localAddress) o.localAddress = p.localAddress;
  if (p.bfd.port !== undefined) o.port = p.bfd.port;
  if (p.bfd.desiredMinTxMs !== undefined) o.desiredMinTxMs = p.bfd.desiredMinTxMs;
  if (p.bfd.requiredMinRxMs !== undefined) o.requiredMinRxMs = p.bfd.requiredMinRxMs;
  if (p.bfd.detectMultiplier !== undefined) o.detectMultiplier = p.bfd.detectMultiplier;
  return o;
}

/**
 * Makes `bfd` take a BGP session down at once when its BFD session leaves Up: calls
 * `peerDown(address, reason)` (BgpSpeaker.peerDown). Returns the unsubscribe function.
 */
export function bindBfdToBgp(
  bfd: BfdManager,
  speaker: { peerDown(address: string, reason: string): void },
): () => void {
  return bfd.onDown((peer, diag) => speaker.peerDown(peer, `BFD session down (diagnostic ${diag})`));
}

/** Adds, updates or removes the BFD session of a peer to match its configuration. */
export function syncPeerBfd(bfd: BfdManager, p: BfdPeerConfig): void {
  const o = bfdOptionsFor(p);
  if (o) bfd.add(p.address, o);
  else bfd.remove(p.address);
}

/**
 * IPv4/IPv6 text ⇄ bytes for the codec: a re-export of the tree's one IP module, `net/ip.ts`
 * (kept so the codec's many imports need not change).
 *
 * @module
 */
export {
  canonicalIp,
  formatIp,
  formatIPv4,
  formatIPv4Number,
  formatIPv6,
  parseCidr,
  parseIPv4,
  parseIPv6,
  parseIPv6Into,
} from "../../net/ip.ts";

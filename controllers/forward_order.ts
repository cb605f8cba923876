/**
 * The order of kube-router's hooks in the built-in FORWARD chain, shared by the two controllers
 * that hook it. The firewall's `KUBE-ROUTER-FORWARD` judges pod traffic against NetworkPolicy;
 * the router's `KUBE-ROUTER-PODNET-FWD` ACCEPTs everything in and out of the pod bridge (so a
 * host whose FORWARD policy is DROP still forwards pod traffic). An ACCEPT ahead of the policy
 * hook would let every packet past the policies, so the router's jump must come after the
 * firewall's, whichever controller synced last.
 *
 * The rule is "after", not "at position N": other agents (Docker, distro firewalls) insert at
 * the top too, and insisting on an exact position would make two agents move their jumps back
 * and forth forever.
 *
 * @module
 */

/** The firewall's FORWARD hook: every NetworkPolicy decision for forwarded pod traffic starts here. */
export const POLICY_FORWARD_CHAIN = "KUBE-ROUTER-FORWARD";

/** The chain a rule jumps to (`-j X`), if any. */
export function jumpTarget(args: readonly string[]): string | undefined {
  const i = args.lastIndexOf("-j");
  return i >= 0 ? args[i + 1] : undefined;
}

/** Index (0-based) of the last policy hook in FORWARD's rules, or -1. */
function lastPolicyHook(rules: readonly (readonly string[])[]): number {
  let last = -1;
  rules.forEach((r, i) => {
    if (jumpTarget(r) === POLICY_FORWARD_CHAIN) last = i;
  });
  return last;
}

/**
 * Whether the jump to an ACCEPT-ing `chain` is placed right in FORWARD's `rules`: exactly once,
 * and after every policy hook.
 */
export function acceptJumpPlaced(rules: readonly (readonly string[])[], chain: string): boolean {
  const mine = rules.flatMap((r, i) => (jumpTarget(r) === chain ? [i] : []));
  return mine.length === 1 && mine[0] > lastPolicyHook(rules);
}

/**
 * The 1-based position at which to insert the jump to an ACCEPT-ing `chain`, given FORWARD's
 * rules once every existing jump to `chain` has been deleted: right after the last policy hook,
 * or at the top when the firewall is not running.
 */
export function acceptJumpPosition(rules: readonly (readonly string[])[], chain: string): number {
  const others = rules.filter((r) => jumpTarget(r) !== chain);
  return lastPolicyHook(others) + 2;
}

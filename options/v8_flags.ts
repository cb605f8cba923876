/**
 * The V8 flags every shipped form of the agent runs with: the image's entrypoint
 * (`manifests/Dockerfile`, `tests/cluster/images.sh`), `deno task compile` (baked into the binary
 * the systemd unit runs) and the cluster suite's process mode. `v8_flags_test.ts` checks that
 * each of them carries exactly this list.
 *
 * Why: V8's young generation defaults to semi-spaces of up to 16 MB each, sized for throughput
 * in browsers. The agent's garbage is small and short-lived (one plan per sync), so 1 MB
 * semi-spaces cost no measurable CPU and keep ~30 MB less resident at 2,000 pods
 * (`deno run -A bench/upstream.ts --scales 300,2000 --ours bundle,bundle:`; 125 -> 92 MB).
 *
 * @module
 */
export const SHIPPED_V8_FLAGS: readonly string[] = ["--max-semi-space-size=1"];

/** The flags as one `deno run` / `deno compile` argument. */
export const shippedV8Arg = (): string => `--v8-flags=${SHIPPED_V8_FLAGS.join(",")}`;

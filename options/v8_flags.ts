/**
 * The V8 flags every shipped form of the agent runs with: the image's entrypoint
 * (`manifests/Dockerfile`, `tests/cluster/images.sh`), `deno task compile` (baked into the binary
 * the systemd unit runs) and the cluster suite's process mode. `v8_flags_test.ts` checks that
 * each of them carries exactly this list.
 *
 * Why:
 * - `--max-semi-space-size=1`: V8's young generation defaults to semi-spaces of up to 16 MB each,
 *   sized for throughput in browsers. The agent's garbage is small and short-lived (one plan per
 *   sync), so 1 MB semi-spaces cost no measurable CPU and keep ~30 MB less resident at 2,000 pods
 *   (`deno run -A bench/upstream.ts --scales 300,2000 --ours bundle,bundle:`; 125 -> 92 MB).
 * - `--expose-gc`: gives `controllers/memory_trim.ts` the full collection it runs once the agent
 *   is quiet after a burst of work (5-6 MB less resident at 300 pods).
 *
 * @module
 */
export const SHIPPED_V8_FLAGS: readonly string[] = ["--max-semi-space-size=1", "--expose-gc"];

/** The flags as one `deno run` / `deno compile` argument. */
export const shippedV8Arg = (): string => `--v8-flags=${SHIPPED_V8_FLAGS.join(",")}`;

/**
 * The `deno run` flags every shipped start of the bundle passes before its V8 flags (the image
 * entrypoints, the cluster suite's process mode, `bench/upstream.ts`). Why:
 * - `--no-prompt`: a missing permission is an error, never a question on a terminal nobody reads;
 * - `--no-config`: the bundle needs no deno.json, and one in the working directory must not change
 *   what runs (or cost the lookup of its imports and lock file);
 * - `--no-code-cache`: a container starts from the image's cache every time, so V8's code cache
 *   was written on each start and never read; consuming one costs ~2 MB resident besides.
 * (`deno task compile` takes `--no-code-cache` alone: it needs the config to compile from source.)
 */
export const SHIPPED_RUN_FLAGS: readonly string[] = ["--no-prompt", "--no-config", "--no-code-cache"];

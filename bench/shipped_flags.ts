/**
 * The V8 flags the shipped agent runs with (the image's entrypoint, the systemd unit and
 * `deno task compile` carry the same list; tests/integration/shipped_flags_test.ts checks it).
 *
 * @module
 */
export const SHIPPED_V8_FLAGS: string[] = [];

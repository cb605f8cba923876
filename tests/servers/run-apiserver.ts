/**
 * Starts one etcd + kube-apiserver pair for a whole test run and keeps it up until killed.
 *
 *   deno run -A tests/servers/run-apiserver.ts start [--env-file PATH]
 *
 * Once the API server is ready it prints `export KR_TEST_KUBECONFIG=<path>` on stdout (and writes
 * the same line to `--env-file` if given, so a runner script can wait for that file), then runs
 * until SIGTERM/SIGINT, when it stops both servers and removes their temp dir. Test files then
 * get this instance from `sharedApiServer()` instead of each starting their own.
 *
 * @module
 */

import { startApiServer } from "../fixtures/apiserver.ts";

function usage(): never {
  console.error("usage: run-apiserver.ts start [--env-file PATH]");
  Deno.exit(2);
}

if (import.meta.main) {
  const [cmd, ...rest] = Deno.args;
  if (cmd !== "start") usage();
  let envFile: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === "--env-file") envFile = rest[++i];
    else if (a.startsWith("--env-file=")) envFile = a.slice("--env-file=".length);
    else usage();
    if (!envFile) usage();
  }
  const server = await startApiServer();
  const line = `export KR_TEST_KUBECONFIG=${server.kubeconfigPath}\n`;
  if (envFile) await Deno.writeTextFile(envFile, line);
  await Deno.stdout.write(new TextEncoder().encode(line));
  const done = Promise.withResolvers<void>();
  const stop = () => done.resolve();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  await done.promise;
  await server.stop();
  if (envFile) await Deno.remove(envFile).catch(() => {});
}

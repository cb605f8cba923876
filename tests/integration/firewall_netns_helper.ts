/**
 * A throwaway network namespace for the firewall's and kernel modules' integration tests:
 * `fw` + a random suffix, removed in `dispose()`. Nothing here touches the root namespace.
 *
 * @module
 */
import { CommandRunner } from "../../kernel/exec.ts";

export interface TestNetns {
  name: string;
  /** Runs every command inside the namespace. */
  runner: CommandRunner;
  sh(script: string): Promise<string>;
  dispose(): Promise<void>;
}

/** Creates `fw<tag><random>` with loopback up. */
export async function createNetns(tag = ""): Promise<TestNetns> {
  const name = `fw${tag}${crypto.randomUUID().slice(0, 8)}`;
  const root = new CommandRunner();
  await root.run(["ip", "netns", "add", name]);
  const runner = new CommandRunner(name);
  await runner.run(["ip", "link", "set", "lo", "up"]);
  return {
    name,
    runner,
    async sh(script: string) {
      return (await runner.run(["sh", "-c", script])).stdout;
    },
    async dispose() {
      await root.run(["ip", "netns", "del", name], { okCodes: [0, 1] });
    },
  };
}

/**
 * A finished-sync snapshot of one process, read from /proc: resident and peak memory (MB), the
 * resident split into anonymous memory (heaps) and file-backed pages (mostly the executable's
 * code), and CPU seconds (user + system). Shared by the benchmarks that run the real agent as a process.
 *
 * @module
 */

/** Reads `/proc/<pid>/status` and `/proc/<pid>/stat`. */
export function procStatus(
  pid: number,
): { rss: number; hwm: number; anon: number; file: number; cpu: number } {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(text)?.[1] ?? 0);
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return {
    rss: kb("VmRSS") / 1024,
    hwm: kb("VmHWM") / 1024,
    anon: kb("RssAnon") / 1024,
    file: (kb("RssFile") + kb("RssShmem")) / 1024,
    cpu: (Number(f[11]) + Number(f[12])) / 100,
  };
}

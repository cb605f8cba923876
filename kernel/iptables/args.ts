/**
 * Splitting and quoting of iptables rule arguments as `iptables-save` prints them and
 * `iptables-restore` reads them: words separated by spaces, double quotes around words with
 * spaces, `\"` and `\\` escaped inside quotes.
 *
 * @module
 */

/** Splits one rule line (without the `-A CHAIN` head or with it) into argv words. */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    while (i < n && (line[i] === " " || line[i] === "\t")) i++;
    if (i >= n) break;
    let word = "";
    let quoted = false;
    while (i < n) {
      const c = line[i];
      if (quoted) {
        if (c === "\\" && i + 1 < n && (line[i + 1] === '"' || line[i + 1] === "\\")) {
          word += line[i + 1];
          i += 2;
          continue;
        }
        if (c === '"') {
          quoted = false;
          i++;
          continue;
        }
        word += c;
        i++;
        continue;
      }
      if (c === " " || c === "\t") break;
      if (c === '"') {
        quoted = true;
        i++;
        continue;
      }
      word += c;
      i++;
    }
    out.push(word);
  }
  return out;
}

/** Quotes one word the way `iptables-save` does (only when it needs it). */
export function quoteArg(word: string): string {
  if (word !== "" && !/[\s"\\']/.test(word)) return word;
  return `"${word.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** Joins argv words into one restore-format line. */
export function joinArgs(words: readonly string[]): string {
  return words.map(quoteArg).join(" ");
}

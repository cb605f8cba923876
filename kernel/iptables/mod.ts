/**
 * iptables: `iptables-save` parsing, `iptables-restore` rendering (full and `--noflush`
 * transactions touching only named chains), and running the tools for IPv4/IPv6 with the nft or
 * legacy backend.
 *
 * @module
 */
export { joinArgs, quoteArg, splitArgs } from "./args.ts";
export {
  type ChainDecl,
  chainRules,
  IptablesParseError,
  isBuiltinChain,
  parseListRules,
  parseSave,
  renderRestore,
  renderRule,
  type Rule,
  type TableDump,
} from "./save.ts";
export {
  ensureJumpFirstEdits,
  isEmptyTransaction,
  jumpTarget,
  type NoflushTransaction,
  renderNoflush,
} from "./transaction.ts";
export {
  binaries,
  detectIptablesBackend,
  type IpFamily,
  type IptablesBackend,
  type IptablesTool,
  listChain,
  restoreFull,
  restoreNoflush,
  save,
  saveText,
} from "./tool.ts";

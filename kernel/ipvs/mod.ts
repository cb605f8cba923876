/**
 * IPVS through ipvsadm: typed table, `-Sn` parser ↔ `-R` renderer, diff, apply, and a model of
 * the kernel's IPVS for tests on kernels without it.
 *
 * @module
 */
export * from "./types.ts";
export {
  cloneTable,
  type IpvsCommand,
  IpvsParseError,
  parseCommand,
  parseSave,
  renderCommand,
  renderSave,
  renderServiceRef,
  schedFlagNames,
  type ServiceRef,
} from "./codec.ts";
export { type DiffOptions, diffTables, renderBatch } from "./diff.ts";
export { parseTimeouts, readIpvs, readTimeouts, restoreIpvs, setTimeouts } from "./apply.ts";
export { IpvsModel, IpvsModelError, type Packet, type TraceResult } from "./model.ts";
export { IpvsModelRunner } from "./model_runner.ts";

/**
 * ipset: `ipset save` parsing ↔ `ipset restore` rendering, the create/fill/swap/destroy script
 * that replaces live sets without emptying them, and running the tool in batches.
 *
 * @module
 */
export {
  type IpSet,
  type IpSetHeader,
  IpsetParseError,
  parseListTerse,
  parseSave,
  renderSave,
  setOption,
} from "./save.ts";
export {
  base32,
  defaultTempName,
  desiredFromSave,
  type DesiredSet,
  renderSwapScript,
  type SwapScriptInput,
} from "./swap.ts";
export { destroySets, type IpsetTool, listHeaders, listNames, restore, save } from "./tool.ts";

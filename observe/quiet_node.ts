/**
 * node-fetch (inside @kubernetes/client-node 1.x) loads Node's deprecated `punycode` module,
 * which prints a DeprecationWarning on every start. Operators read our stderr as the agent's
 * log, so silence Node deprecation warnings before client-node loads. Imported first by each
 * module that imports client-node, not by main: `node:process` costs the agent's start ~10 ms.
 *
 * @module
 */
import process from "node:process";

(process as unknown as { noDeprecation: boolean }).noDeprecation = true;

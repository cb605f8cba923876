/**
 * Cluster state for the controllers: two sources (the Kubernetes API, or manifests files)
 * that publish consistent, immutable snapshots.
 *
 * @module
 */
export { apiSource, type ApiSourceOptions } from "./api.ts";
export { type ManifestOptions, manifestSource, objectsToMaps, parseManifestText } from "./manifests.ts";
export { ALL_KINDS, type SnapshotSource, SnapshotStore } from "./store.ts";
export * from "./convert.ts";
export * from "./types.ts";

/**
 * Normalises what `@kubernetes/client-node` hands over back to the API's wire JSON.
 *
 * The informers deliver two shapes of the same object: a list (the first one and every re-list)
 * goes through the generated models, which rename reserved words (`from` becomes `_from` in a
 * NetworkPolicy ingress rule) and turn timestamps into `Date`s; a watch event is the raw JSON the
 * API server sent. `convert.ts` reads wire field names only, so model instances are turned back
 * here, using each model class's own `attributeTypeMap` (name → baseName): every rename the
 * generator makes is undone, including ones added in later client releases.
 *
 * Plain objects (watch events, manifests) are returned as they are: raw JSON never holds model
 * instances, so only a model at the top is walked.
 *
 * @module
 */

interface AttributeType {
  name: string;
  baseName: string;
}
interface ModelClass {
  getAttributeTypeMap?: () => AttributeType[];
}

/** Renamed attributes (model name → wire name) per model class; empty map when none are. */
const renamesByClass = new WeakMap<object, Map<string, string>>();

function renamesOf(ctor: ModelClass): Map<string, string> {
  let m = renamesByClass.get(ctor);
  if (!m) {
    m = new Map();
    const attrs = typeof ctor.getAttributeTypeMap === "function" ? ctor.getAttributeTypeMap() : [];
    for (const a of attrs ?? []) if (a.name !== a.baseName) m.set(a.name, a.baseName);
    renamesByClass.set(ctor, m);
  }
  return m;
}

function walk(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(walk);
  const renames = renamesOf((v as object).constructor as ModelClass);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === undefined) continue; // The serializer's "absent", not a value.
    out[renames.get(k) ?? k] = walk(x);
  }
  return out;
}

/** True for an object that is not plain JSON (a client-node model instance). */
export function isModelInstance(v: unknown): boolean {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto !== Object.prototype && proto !== null;
}

/** The wire JSON of an API object, whether it came as a model instance or as raw JSON. */
export function toWire<T = unknown>(obj: T): T {
  return (isModelInstance(obj) ? walk(obj) : obj) as T;
}

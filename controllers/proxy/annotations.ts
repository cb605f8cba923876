/**
 * The service annotations the proxy reads (upstream kube-router's keys and accepted values), each
 * parsed into a value plus, for bad input, a warning naming the annotation and what is accepted.
 *
 * @module
 */
import type { SchedFlag, Scheduler } from "./types.ts";

export const ANNOTATION = {
  scheduler: "kube-router.io/service.scheduler",
  schedFlags: "kube-router.io/service.schedflags",
  dsr: "kube-router.io/service.dsr",
  hairpin: "kube-router.io/service.hairpin",
  hairpinExternalIps: "kube-router.io/service.hairpin.externalips",
  local: "kube-router.io/service.local",
  skipLbIps: "kube-router.io/service.skiplbips",
} as const;

/** Label naming the proxy a service is meant for; services for another proxy are left alone. */
export const SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name";
export const HEADLESS_LABEL = "service.kubernetes.io/headless";
export const OUR_PROXY_NAME = "kube-router";

const SCHEDULERS: readonly Scheduler[] = ["rr", "lc", "dh", "sh", "mh"];
const SCHED_FLAGS: readonly SchedFlag[] = ["flag-1", "flag-2", "flag-3"];

export interface Parsed<T> {
  value: T;
  /** Set when the input was bad and a fallback was used. */
  warning?: { field: string; message: string };
}

/** `kube-router.io/service.scheduler`: rr (default), lc, dh, sh, mh; anything else falls back to rr. */
export function parseScheduler(annotations: Record<string, string>): Parsed<Scheduler> {
  const raw = annotations[ANNOTATION.scheduler];
  if (raw === undefined) return { value: "rr" };
  const v = raw.trim();
  if ((SCHEDULERS as readonly string[]).includes(v)) return { value: v as Scheduler };
  return {
    value: "rr",
    warning: {
      field: `annotations[${ANNOTATION.scheduler}]`,
      message: `unknown scheduler ${JSON.stringify(raw)}, using rr; accepted: ${SCHEDULERS.join(", ")}`,
    },
  };
}

/**
 * `kube-router.io/service.schedflags`: comma list of flag-1/flag-2/flag-3, honoured only with mh
 * (as upstream). Unknown items are dropped with a warning; the known ones are kept.
 */
export function parseSchedFlags(
  annotations: Record<string, string>,
  scheduler: Scheduler,
): Parsed<SchedFlag[]> {
  const raw = annotations[ANNOTATION.schedFlags];
  if (raw === undefined || raw.trim() === "") return { value: [] };
  const items = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const good = SCHED_FLAGS.filter((f) => items.includes(f));
  const bad = items.filter((s) => !(SCHED_FLAGS as readonly string[]).includes(s));
  if (scheduler !== "mh") {
    return {
      value: [],
      warning: {
        field: `annotations[${ANNOTATION.schedFlags}]`,
        message: `scheduler flags ${JSON.stringify(raw)} ignored: only honoured with scheduler mh`,
      },
    };
  }
  return {
    value: good,
    warning: bad.length === 0 ? undefined : {
      field: `annotations[${ANNOTATION.schedFlags}]`,
      message: `unknown scheduler flag(s) ${JSON.stringify(bad.join(","))} ignored; accepted: ${
        SCHED_FLAGS.join(", ")
      }`,
    },
  };
}

/** `kube-router.io/service.dsr`: only "tunnel" is implemented; another value means no DSR. */
export function parseDsr(annotations: Record<string, string>): Parsed<boolean> {
  const raw = annotations[ANNOTATION.dsr];
  if (raw === undefined) return { value: false };
  if (raw.trim() === "tunnel") return { value: true };
  return {
    value: false,
    warning: {
      field: `annotations[${ANNOTATION.dsr}]`,
      message: `unsupported DSR mode ${JSON.stringify(raw)}, serving without DSR; accepted: tunnel`,
    },
  };
}

/** Whether an annotation is present (upstream treats presence, even empty, as "on"). */
export function hasAnnotation(annotations: Record<string, string>, key: string): boolean {
  return Object.hasOwn(annotations, key);
}

/** 32-bit FNV-1a (the hash upstream uses for DSR firewall marks). */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Upstream's DSR firewall mark: FNV-1a-32 of "<ip>-<proto>-<port>" masked with 0x3FFF; on a
 * collision with a mark already handed out, "-<n>" is appended and hashed again. `taken` maps
 * mark → the id that owns it, and is updated.
 */
export function dsrFwmark(ip: string, protocol: string, port: number, taken: Map<number, string>): number {
  const id = `${ip}-${protocol.toLowerCase()}-${port}`;
  for (let n = 0; n < 16380; n++) {
    const mark = fnv1a32(n === 0 ? id : `${id}-${n}`) & 0x3fff;
    const owner = taken.get(mark);
    if (mark !== 0 && (owner === undefined || owner === id)) {
      taken.set(mark, id);
      return mark;
    }
  }
  throw new RangeError(`no free DSR firewall mark for ${id}: all 16380 are in use`);
}

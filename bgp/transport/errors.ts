/**
 * The error a caller of the socket layer handles: a failed system call with its errno, the
 * libc message and the address it concerned, in one line.
 *
 * @module
 */
import { errno, errnoName, strerror } from "./libc.ts";

/** A failed socket system call (`op`), e.g. `connect 10.0.0.1:179: ECONNREFUSED (Connection refused)`. */
export class TransportError extends Error {
  override name = "TransportError";
  /** The system call or step that failed: "socket", "setsockopt(TCP_MD5SIG)", "connect", ... */
  readonly op: string;
  /** errno from libc (0 when the failure was not a system call, e.g. a bad address). */
  readonly errno: number;
  /** Symbolic errno ("ECONNREFUSED"), "" when `errno` is 0. */
  readonly code: string;
  /** The address or object concerned, as the user wrote it. */
  readonly target: string;

  constructor(op: string, target: string, errnoValue: number, detail?: string, options?: ErrorOptions) {
    const what = errnoValue
      ? `${errnoName(errnoValue)} (${detail ?? strerror(errnoValue)})`
      : (detail ?? "failed");
    super(`${op} ${target}: ${what}`, options);
    this.op = op;
    this.errno = errnoValue;
    this.code = errnoValue ? errnoName(errnoValue) : "";
    this.target = target;
  }
}

/** Builds a `TransportError` from the errno left by the call that just failed. */
export function sysError(op: string, target: string): TransportError {
  return new TransportError(op, target, errno());
}

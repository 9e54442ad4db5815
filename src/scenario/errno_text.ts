/**
 * errno names and their strerror(3) texts (glibc's wording), for the messages shell tools print
 * ("echo: write error: Invalid argument", "cat: read error: No such device or address") and for
 * `expect: { rc: -EBUSY }`.
 */
import * as E from "../kernel/errno.ts";
import { type Errno, errnoName } from "../kernel/errno.ts";

/** Not in the model's errno table (no model path returns it); the VFS does, when a shell opens a sysfs path. */
export const EACCES = 13;
export const EISDIR = 21;

const STRERROR: Record<number, string> = {
  [E.EPERM]: "Operation not permitted",
  [E.ENOENT]: "No such file or directory",
  [E.EINTR]: "Interrupted system call",
  [E.ENXIO]: "No such device or address",
  [E.E2BIG]: "Argument list too long",
  [E.EAGAIN]: "Resource temporarily unavailable",
  [E.ENOMEM]: "Cannot allocate memory",
  [EACCES]: "Permission denied",
  [E.EFAULT]: "Bad address",
  [E.EBUSY]: "Device or resource busy",
  [E.EEXIST]: "File exists",
  [E.ENODEV]: "No such device",
  [EISDIR]: "Is a directory",
  [E.EINVAL]: "Invalid argument",
  [E.ENOSPC]: "No space left on device",
  [E.ERANGE]: "Numerical result out of range",
  [E.EOPNOTSUPP]: "Operation not supported",
};

const EXTRA_NAMES: Record<number, string> = { [EACCES]: "-EACCES", [EISDIR]: "-EISDIR" };

/** "-EINVAL" for -22 (also for the VFS errnos the model's table lacks); "0" for 0. */
export function errnoLabel(err: Errno): string {
  return EXTRA_NAMES[-err] ?? errnoName(err);
}

/** strerror(-err): "Invalid argument" for -22. */
export function strerror(err: Errno): string {
  return STRERROR[Math.abs(err)] ?? `Unknown error ${Math.abs(err)}`;
}

/** Every errno name a scenario may expect, "-EPERM" … , mapped to its negative value. */
export const ERRNO_BY_NAME: ReadonlyMap<string, Errno> = new Map(
  Object.keys(STRERROR)
    .map(Number)
    .sort((a, b) => a - b)
    .map((n) => [errnoLabel(-n), -n] as const),
);

/** errno values as the kernel returns them (negated), include/uapi/asm-generic/errno-base.h and errno.h. */
export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ERANGE = 34;
export const EOPNOTSUPP = 95;
/** EFSCORRUPTED in XFS and ext4 (fs/xfs/xfs_linux.h). */
export const EUCLEAN = 117;
export const EHWPOISON = 133;

const NAMES: Record<number, string> = {
  [EPERM]: "EPERM",
  [ENOENT]: "ENOENT",
  [EINTR]: "EINTR",
  [EIO]: "EIO",
  [ENXIO]: "ENXIO",
  [E2BIG]: "E2BIG",
  [EAGAIN]: "EAGAIN",
  [ENOMEM]: "ENOMEM",
  [EFAULT]: "EFAULT",
  [EBUSY]: "EBUSY",
  [EEXIST]: "EEXIST",
  [ENODEV]: "ENODEV",
  [EINVAL]: "EINVAL",
  [ENOSPC]: "ENOSPC",
  [ERANGE]: "ERANGE",
  [EOPNOTSUPP]: "EOPNOTSUPP",
  [EUCLEAN]: "EUCLEAN",
  [EHWPOISON]: "EHWPOISON",
};

/** A kernel result: 0 for success or a negative errno, as the C returns it. */
export type Errno = number;

/** "-EINVAL" for -22, "0" for success. */
export function errnoName(err: Errno): string {
  if (err === 0) return "0";
  const name = NAMES[-err];
  return name === undefined ? String(err) : `-${name}`;
}

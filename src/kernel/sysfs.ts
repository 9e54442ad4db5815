/**
 * sysfs as the model exposes it: attributes at the kernel's own absolute paths, each with a show (value or
 * errno, as `cat` would see it) and optionally a store (what `echo value > path` does).
 *
 * Drivers register providers; a provider lists the attributes that exist right now (devices come and go).
 */
import { ENOENT, EPERM, type Errno } from "./errno.ts";
import type { Kernel } from "./kernel.ts";
import { type KernelPath, runToEnd, step } from "./path.ts";

export interface SysfsAttr {
  /** The value without the trailing newline, or a negative errno (read error). */
  show(): string | Errno;
  /** Write a value (the trailing newline already stripped); 0 or a negative errno. */
  store?(value: string): Errno;
  /** The store as a kernel path (driver bind/unbind), so it can interleave with other threads. */
  storePath?(value: string): KernelPath<Errno>;
}

/** A device directory: its path, the driver bound to it ("" when none) and its attributes. */
export interface SysfsDir {
  path: string;
  driver: string;
  attrs: Map<string, SysfsAttr>;
}

export type SysfsProvider = (k: Kernel) => SysfsDir[];

/** One directory of a provider by its path, without listing the others (null: not this provider's). */
export type SysfsLookup = (k: Kernel, dir: string) => SysfsDir | null;

export class Sysfs {
  private readonly providers: { list: SysfsProvider; under: string | null; lookup: SysfsLookup | null }[] = [];

  /**
   * `under`: every directory the provider lists is that path or below it, so a lookup elsewhere need not ask it
   * (the memory block provider lists a directory per block: thousands, on a large machine). `lookup`: finds one
   * of its directories as the list would (the first with that path), without building the others.
   */
  register(p: SysfsProvider, under: string | null = null, lookup: SysfsLookup | null = null): void {
    this.providers.push({ list: p, under, lookup });
  }

  dirs(k: Kernel): SysfsDir[] {
    return this.providers.flatMap((p) => p.list(k));
  }

  /** The attribute at `path`, found through the providers' lookups where they have them; null when none. */
  attr(k: Kernel, path: string): SysfsAttr | null {
    const slash = path.lastIndexOf("/");
    const dir = path.slice(0, slash);
    const name = path.slice(slash + 1);
    for (const p of this.providers) {
      if (p.under !== null && dir !== p.under && !dir.startsWith(`${p.under}/`)) continue;
      if (p.lookup) {
        const d = p.lookup(k, dir);
        if (d) return d.attrs.get(name) ?? null;
        continue;
      }
      for (const d of p.list(k)) if (d.path === dir) return d.attrs.get(name) ?? null;
    }
    return null;
  }

  /** `cat path` */
  read(k: Kernel, path: string): string | Errno {
    const a = this.attr(k, path);
    return a ? a.show() : -ENOENT;
  }

  /** `echo value > path` */
  write(k: Kernel, path: string, value: string): Errno {
    const a = this.attr(k, path);
    if (!a) return -ENOENT;
    if (!a.store) return -EPERM;
    return a.storePath ? runToEnd(a.storePath(value.replace(/\n$/, ""))) : a.store(value.replace(/\n$/, ""));
  }

  /** `echo value > path` as a kernel path: a store without a path form is one step. */
  *writePath(k: Kernel, path: string, value: string): KernelPath<Errno> {
    const a = this.attr(k, path);
    if (!a) return -ENOENT;
    if (!a.store) return -EPERM;
    const v = value.replace(/\n$/, "");
    if (a.storePath) return yield* a.storePath(v);
    yield step(`${path}: store`);
    return a.store(v);
  }
}

/** A read-only attribute. */
export function ro(show: () => string | Errno): SysfsAttr {
  return { show };
}

/** A read-write attribute. */
export function rw(show: () => string | Errno, store: (v: string) => Errno): SysfsAttr {
  return { show, store };
}

/** `path = value` lines, as zonedev prints sysfs (read errors as the errno name). */
export function sysfsLines(k: Kernel, prefix = "", errName: (e: Errno) => string = String): string[] {
  const out: string[] = [];
  const dirs = k.sysfs.dirs(k).filter((d) => d.path.startsWith(prefix)).sort((a, b) => (a.path < b.path ? -1 : 1));
  for (const d of dirs) {
    for (const name of [...d.attrs.keys()].sort()) {
      const v = d.attrs.get(name)!.show();
      out.push(`${d.path}/${name} = ${typeof v === "number" ? `<read error ${errName(v)}>` : v}`);
    }
  }
  return out;
}

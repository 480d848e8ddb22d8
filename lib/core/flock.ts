// flock(2), released when its holder dies however it dies, so never stale; from
// libc through bun:ffi. The descriptor is close-on-exec: a detached `tart run`
// never inherits the lock.
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs";
import { StateIoError } from "./errors.ts";

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

let libc: { flock(fd: number, op: number): number } | undefined;
function flock(fd: number, op: number): number {
  libc ??= dlopen(process.platform === "darwin" ? "libc.dylib" : "libc.so.6", {
    flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  }).symbols;
  return libc.flock(fd, op);
}

export class FileLock {
  private constructor(
    readonly path: string,
    private fd: number | undefined,
  ) {}

  /** Undefined when another process holds it. */
  static tryAcquire(path: string): FileLock | undefined {
    let fd: number;
    try {
      fd = openSync(path, "a+", 0o600);
    } catch (err) {
      throw new StateIoError(`cannot open the lock file ${path}: ${(err as Error).message}`, err);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
      closeSync(fd);
      return undefined;
    }
    // Informational only (for "held by pid N" messages): the kernel lock is the truth.
    try {
      ftruncateSync(fd, 0);
      writeSync(fd, `${process.pid}\n`);
    } catch {
      // a full disk must not stop us from holding the lock
    }
    return new FileLock(path, fd);
  }

  static holderPid(path: string): number | undefined {
    try {
      const pid = Number(readFileSync(path, "utf8").trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  release(): void {
    if (this.fd === undefined) return;
    flock(this.fd, LOCK_UN);
    closeSync(this.fd);
    this.fd = undefined;
  }
}

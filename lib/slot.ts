// A slot's durable memory: the state file (written atomically before each
// phase acts, so a crash leaves a record of what to clean) and the lock that
// keeps a second `loop` off the same slot. Never holds a secret.
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { uptime } from "node:os";
import { join } from "node:path";
import { MacosRunnerError } from "./errors.ts";
import { writeFileAtomic } from "./fs.ts";

export type Phase = "token" | "clone" | "boot" | "run" | "cleanup" | "done" | "failed";

export interface SlotState {
  slot: number;
  phase: Phase;
  /** VM and runner share one name: <prefix>-<host>-<slot>-<random>. */
  vm?: string;
  runner_name?: string;
  /** The image digest the VM is cloned from; `pull` never prunes it while `vm` is set. */
  image?: string;
  runner_id?: number;
  /** The runner reported its job complete, so GitHub already de-registered it. */
  runner_gone?: boolean;
  job?: string;
  job_result?: string;
  cycle_started_at?: string;
  updated_at: string;
  /** Consecutive failed cycles; drives the backoff. */
  failures: number;
  backoff_until?: string;
  last_error?: string;
}

export class SlotBusyError extends MacosRunnerError {
  constructor(message: string) {
    super(message, { kind: "tempfail" });
  }
}

export class SlotStore {
  readonly path: string;
  private state: SlotState;

  constructor(stateDir: string, readonly slot: number) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    this.path = join(stateDir, `slot-${slot}.json`);
    this.state = this.read() ?? { slot, phase: "done", failures: 0, updated_at: new Date().toISOString() };
  }

  read(): SlotState | undefined {
    try {
      return JSON.parse(readFileSync(this.path, "utf8")) as SlotState;
    } catch {
      return undefined;
    }
  }

  get current(): Readonly<SlotState> {
    return this.state;
  }

  /** Merges the patch and writes the file atomically; `undefined` values remove keys. */
  write(patch: Partial<SlotState>): SlotState {
    const next = { ...this.state, ...patch, slot: this.slot, updated_at: new Date().toISOString() } as SlotState;
    for (const k of Object.keys(next) as (keyof SlotState)[]) if (next[k] === undefined) delete next[k];
    writeFileAtomic(this.path, `${JSON.stringify(next, null, 2)}\n`, 0o600);
    this.state = next;
    return next;
  }
}

function bootTimeS(): number {
  return Math.round(Date.now() / 1000 - uptime());
}

function holderAlive(pid: number, bootedAt: number): boolean {
  if (Math.abs(bootedAt - bootTimeS()) > 120) return false; // host rebooted since
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** An exclusive lock on a slot: a file created with link(2), holding the owner's pid and boot time. */
export class SlotLock {
  private constructor(readonly path: string) {}

  static acquire(stateDir: string, slot: number): SlotLock {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const path = join(stateDir, `slot-${slot}.lock`);
    const mine = `${path}.${process.pid}`;
    writeFileSync(mine, JSON.stringify({ pid: process.pid, booted_at: bootTimeS() }), { mode: 0o600 });
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          linkSync(mine, path);
          return new SlotLock(path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        }
        let holder: { pid: number; booted_at: number } | undefined;
        try {
          holder = JSON.parse(readFileSync(path, "utf8"));
        } catch {
          holder = undefined; // unreadable: treat as stale
        }
        if (holder && holderAlive(holder.pid, holder.booted_at)) {
          throw new SlotBusyError(`slot ${slot} is already served by another loop (pid ${holder.pid}, lock ${path}); not starting a second one`);
        }
        // Stale: move it aside atomically so two racing starters cannot both take over.
        try {
          renameSync(path, `${path}.stale.${process.pid}`);
          unlinkSync(`${path}.stale.${process.pid}`);
        } catch {
          // another starter moved it first; try to link again
        }
      }
      throw new SlotBusyError(`slot ${slot}: could not take the lock ${path}`);
    } finally {
      unlinkSync(mine);
    }
  }

  release(): void {
    if (existsSync(this.path)) unlinkSync(this.path);
  }
}

/** Delay after `failures` consecutive failed cycles: doubling from initial, capped. */
export function backoffMs(failures: number, initialMs: number, maxMs: number): number {
  if (failures <= 0) return 0;
  return Math.min(maxMs, initialMs * 2 ** (failures - 1));
}

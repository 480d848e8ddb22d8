// Carries out a fault card through the world's controls only: sim/github
// faults and controls, sim/tart faults (per VM name pattern), signals to the
// loop, its session client (ssh or tart exec), the VM's `tart run` and the guest's runner, and
// files in the state dir. Never by changing product code.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Agent } from "../../sim/launchd.ts";
import type { FaultInput } from "../../sim/github/client.ts";
import { commandLine, markedProcesses } from "../../sim/tart/guest/processes.ts";
import { runState } from "../../sim/tart/running.ts";
import type { Fault } from "../../sim/world.ts";
import type { Action, Endpoint } from "./plan.ts";
import { sessionClients, signal } from "./procs.ts";
import { ORG, slotPrefix, SLOTS, type SoakHost } from "./setup.ts";

/** What a slot was doing when a fault hit it (from its state file). */
export interface Snapshot {
  phase?: string | undefined;
  vm?: string | undefined;
  runnerId?: number | undefined;
  runnerName?: string | undefined;
  job?: string | undefined;
}

export interface Outcome {
  applied: boolean;
  note?: string;
  /** VMs the fault killed (their jobs die with them). */
  killedVms?: string[];
  /** Slots whose loop the fault signalled. */
  signalled?: number[];
}

const ENDPOINTS: Record<Endpoint, { method: string; path: RegExp }> = {
  jit: { method: "POST", path: new RegExp(`^/orgs/${ORG}/actions/runners/generate-jitconfig$`) },
  delete: { method: "DELETE", path: new RegExp(`^/orgs/${ORG}/actions/runners/\\d+$`) },
  list: { method: "GET", path: new RegExp(`^/orgs/${ORG}/actions/runners$`) },
};

/**
 * sim/tart's faults live in one settings file per host, and rewriting it
 * resets what was consumed; so the list is rewritten with only what is left
 * of each armed fault, plus the new one.
 */
class TartFaults {
  constructor(private readonly h: SoakHost) {}

  arm(fault: Fault): void {
    const path = this.h.host.env.SIM_TART_CONFIG!;
    const text = readFileSync(path, "utf8");
    const armed = ((JSON.parse(text) as { faults?: Fault[] }).faults ?? []);
    let used: number[] = [];
    try {
      const st = JSON.parse(readFileSync(`${path}.state`, "utf8")) as { hash: string; used: number[] };
      if (st.hash === createHash("sha256").update(text).digest("hex")) used = st.used;
    } catch {
      // nothing consumed yet
    }
    const left = armed.map((f, i) => ({ ...f, count: (f.count ?? 1) - (used[i] ?? 0) })).filter((f) => f.count > 0);
    this.h.host.setTart({ faults: [...left, fault] });
  }

  clear(): void {
    this.h.host.setTart({ faults: [] });
  }
}

export class Injector {
  readonly tart: TartFaults;

  constructor(
    private readonly h: SoakHost,
    private readonly agents: () => Map<number, Agent>,
    /** An unrelated live process, for stale lock files. */
    private readonly strangerPid: number,
  ) {
    this.tart = new TartFaults(h);
  }

  private vmDir = (vm: string) => join(this.h.host.tartHome, "vms", vm);
  private statePath = (slot: number) => join(this.h.stateDir, `slot-${slot}.json`);

  /** SIGKILLs a VM's `tart run`: the VM is gone at once, its guest silent. */
  private killVm(vm: string): boolean {
    const run = runState(this.vmDir(vm));
    return run !== undefined && signal(run.pid, "SIGKILL");
  }

  async apply(action: Action, slot: number, s: Snapshot): Promise<Outcome> {
    const loopPid = this.agents().get(slot)?.pid;
    const pattern = `${slotPrefix(slot)}*`;
    switch (action.kind) {
      case "github": {
        const { method, path } = ENDPOINTS[action.endpoint];
        const spec: FaultInput = { method, path, count: action.count };
        if (action.fault === "5xx") Object.assign(spec, { status: action.status });
        if (action.fault === "429") Object.assign(spec, { status: 429, retryAfter: action.retryAfterS });
        if (action.fault === "403-secondary") Object.assign(spec, { rateLimited: "secondary", retryAfter: action.retryAfterS });
        if (action.fault === "403-primary") Object.assign(spec, { rateLimited: "primary", retryAfter: action.retryAfterS });
        if (action.fault === "drop") spec.drop = true;
        if (action.fault === "slow") Object.assign(spec, { latencyMs: action.latencyMs });
        await this.h.world.gh.fault(spec);
        return { applied: true };
      }
      case "token-revoked":
        return { applied: (await this.h.world.gh.revokeTokens(ORG)) > 0, note: "the installation tokens issued so far" };
      case "clone-fail":
        this.tart.arm({ kind: "clone_disk_full", vm: pattern });
        return { applied: true };
      case "no-ip":
        this.tart.arm({ kind: "no_ip", vm: pattern });
        return { applied: true };
      case "start-failure":
        this.tart.arm({ kind: "start_failure", vm: pattern });
        return { applied: true };
      case "crash-fault":
        this.tart.arm({ kind: "crash", vm: pattern, after_ms: action.afterMs });
        return { applied: true };
      case "vm-killed":
        return s.vm && this.killVm(s.vm) ? { applied: true, killedVms: [s.vm] } : { applied: false, note: "no running VM" };
      case "ssh-drop": {
        // The session's client dies, whichever the transport: ssh, or the `tart exec` running the runner.
        const clients = loopPid ? sessionClients(loopPid) : [];
        for (const pid of clients) signal(pid, "SIGKILL");
        return clients.length > 0 ? { applied: true, killedVms: s.vm ? [s.vm] : [] } : { applied: false, note: "no session client (ssh or tart exec)" };
      }
      case "runner-exit": {
        if (!s.vm) return { applied: false, note: "no VM" };
        const dir = this.vmDir(s.vm);
        const listeners = markedProcesses((v) => v === dir).filter((p) => commandLine(p.pid).some((a) => a.endsWith("Runner.Listener.mjs")));
        for (const p of listeners) signal(p.pid, "SIGTERM");
        return listeners.length > 0 ? { applied: true, killedVms: [s.vm] } : { applied: false, note: "runner not started" };
      }
      case "runner-retired":
        if (s.runnerId === undefined) return { applied: false, note: "no runner yet" };
        try {
          await this.h.world.gh.retireRunner(s.runnerId);
          return { applied: true };
        } catch (err) {
          return { applied: false, note: (err as Error).message.includes("422") ? "runner already busy with a job" : (err as Error).message };
        }
      case "kill":
        return loopPid && signal(loopPid, "SIGKILL") ? { applied: true, signalled: [slot] } : { applied: false, note: "loop not running" };
      case "drain":
        return loopPid && signal(loopPid, "SIGTERM") ? { applied: true, signalled: [slot] } : { applied: false, note: "loop not running" };
      case "reboot":
        return this.reboot();
      case "state-lost":
        if (!existsSync(this.statePath(slot))) return { applied: false, note: "no state file" };
        unlinkSync(this.statePath(slot));
        return { applied: true };
      case "state-garbage":
        writeFileSync(this.statePath(slot), '{"phase": "run", "vm": 42, garbage', { mode: 0o600 });
        return { applied: true };
      case "stale-lock":
        for (const lock of [join(this.h.stateDir, `slot-${slot}.lock`), join(this.h.stateDir, "github-credentials.lock")]) writeFileSync(lock, `${this.strangerPid}\n`, { mode: 0o600 });
        return { applied: true, note: `lock files name pid ${this.strangerPid}` };
    }
  }

  /** Power loss: every loop, VM and guest of ours dies at once; launchd starts the agents again. */
  private reboot(): Outcome {
    const signalled = SLOTS.filter((slot) => {
      const pid = this.agents().get(slot)?.pid;
      return pid !== undefined && signal(pid, "SIGKILL");
    });
    const vms = join(this.h.host.tartHome, "vms");
    const ours = readdirSync(vms).filter((n) => SLOTS.some((slot) => n.startsWith(slotPrefix(slot))));
    const killedVms = ours.filter((vm) => this.killVm(vm));
    for (const p of markedProcesses((v) => ours.some((vm) => v === this.vmDir(vm)))) signal(p.pid, "SIGKILL");
    return { applied: true, signalled, killedVms };
  }
}

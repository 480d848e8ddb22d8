// One slot's fault director: at every launch of the slot's agent it draws the
// spawn's card (or none) from the slot's deck, and plays each card in hand
// when its trigger comes (at once, after a delay in the phase it names, or
// between two cycles). A card whose phase the spawn never reaches waits for a
// later spawn, while new cards keep coming. Everything
// injected, and every spawn and exit, is recorded for the measures.
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Deck, Card } from "./plan.ts";
import { label } from "./plan.ts";
import type { Injector } from "./inject.ts";
import type { SoakHost } from "./setup.ts";

export interface Spawn {
  slot: number;
  n: number;
  pid: number;
  startedAt: number;
  exitedAt?: number;
  code?: number | null;
  signal?: string | null;
  /** The soak signalled this run's loop (kill, drain, reboot): its end is no storm. */
  signalledBySoak?: boolean;
}

export interface Injected {
  at: number;
  slot: number;
  spawn: number;
  card: string;
  kind: string;
  /** The slot's state when it was played. */
  phase?: string | undefined;
  vm?: string | undefined;
  runner?: string | undefined;
  job?: string | undefined;
  applied: boolean;
  note?: string | undefined;
  /** VMs it killed (or, for tart faults armed by name pattern, the VM of the slot's next boot). */
  vms: string[];
}

/** Tart faults armed by pattern hit the next VM the slot boots: that VM is named once the director sees it. */
const NEXT_VM_FAULTS = new Set(["crash-fault", "no-ip", "start-failure"]);

interface StateView {
  phase?: string;
  phase_since?: string;
  vm?: string;
  runner_id?: number;
  runner_name?: string;
  job?: string;
}

interface Pending {
  card: Card;
  timer?: ReturnType<typeof setTimeout> | undefined;
}

export class Director {
  /** Cards drawn and not yet played; a phase card the spawn never reached waits here for a later one. */
  private pending: Pending[] = [];
  private spawn: Spawn | undefined;
  private stopped = false;
  private readonly timer: ReturnType<typeof setInterval>;
  /** Pattern-armed tart faults still waiting to learn their VM. */
  private awaitingVm: Injected[] = [];
  /** How far the slot's log has been read, and when this spawn's runner last started listening. */
  private logOffset = 0;
  private listeningAt: number | undefined;

  constructor(
    readonly slot: number,
    private readonly h: SoakHost,
    private readonly deck: Deck,
    private readonly injector: Injector,
    private readonly injected: Injected[],
    private readonly spawns: Spawn[],
    /** Marks the spawns of the slots a fault signalled. */
    private readonly markSignalled: (slots: number[]) => void,
  ) {
    this.timer = setInterval(() => this.tick(), 20);
  }

  private readState(): StateView {
    try {
      return JSON.parse(readFileSync(join(this.h.stateDir, `slot-${this.slot}.json`), "utf8")) as StateView;
    } catch {
      return {};
    }
  }

  onSpawn(pid: number): void {
    const n = this.spawns.filter((s) => s.slot === this.slot).length + 1;
    this.spawn = { slot: this.slot, n, pid, startedAt: Date.now() };
    this.spawns.push(this.spawn);
    if (this.stopped) return;
    const card = this.deck.draw();
    if (card) this.pending.push({ card });
    for (const p of this.pending.filter((p) => p.card.trigger.at === "start")) void this.play(p);
  }

  onExit(code: number | null, signal: NodeJS.Signals | null): void {
    const spawn = this.spawn;
    if (spawn) Object.assign(spawn, { exitedAt: Date.now(), code, signal });
    for (const p of this.pending) {
      clearTimeout(p.timer);
      p.timer = undefined;
    }
    // Between two cycles: the loop is gone and launchd has not started the next one yet.
    if (!this.stopped) for (const p of this.pending.filter((p) => p.card.trigger.at === "between")) void this.play(p);
  }

  /** Reads what the slot logged since the last tick, for the moment its runner starts listening. */
  private followLog(): void {
    const path = join(this.h.logDir, `slot-${this.slot}.log`);
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      return;
    }
    if (size <= this.logOffset) return;
    const fd = openSync(path, "r");
    const buf = Buffer.alloc(size - this.logOffset);
    readSync(fd, buf, 0, buf.length, this.logOffset);
    closeSync(fd);
    const text = buf.toString("utf8");
    const end = text.lastIndexOf("\n") + 1;
    this.logOffset += Buffer.byteLength(text.slice(0, end));
    if (text.slice(0, end).includes('"event":"run.ready"')) this.listeningAt = Date.now();
  }

  private tick(): void {
    this.followLog();
    const s = this.readState();
    const spawn = this.spawn;
    if (!spawn || spawn.exitedAt !== undefined) return;
    const listening = this.listeningAt !== undefined && this.listeningAt >= spawn.startedAt;
    const inThisSpawn = Date.parse(s.phase_since ?? "") >= spawn.startedAt - 5;
    if (inThisSpawn && s.vm && (s.phase === "boot" || s.phase === "run")) {
      for (const i of this.awaitingVm.splice(0)) i.vms.push(s.vm);
    }
    if (this.stopped || !inThisSpawn) return;
    for (const p of this.pending) {
      const t = p.card.trigger;
      if (p.timer || !((t.at === "phase" && s.phase === t.phase) || (t.at === "listening" && listening))) continue;
      p.timer = setTimeout(() => {
        p.timer = undefined;
        // The loop this delay was meant for has exited: the card waits for the next spawn.
        if (this.spawn === spawn && spawn.exitedAt === undefined) void this.play(p);
      }, t.delayMs);
    }
  }

  private async play(p: Pending): Promise<void> {
    if (!this.pending.includes(p)) return;
    this.pending = this.pending.filter((q) => q !== p);
    const { card } = p;
    const st = this.readState();
    const record: Injected = {
      at: Date.now(), slot: this.slot, spawn: this.spawn?.n ?? 0, card: label(card), kind: card.action.kind,
      phase: st.phase, vm: st.vm, runner: st.runner_name, job: st.job, applied: false, vms: [],
    };
    this.injected.push(record);
    try {
      const out = await this.injector.apply(card.action, this.slot, { phase: st.phase, vm: st.vm, runnerId: st.runner_id, runnerName: st.runner_name, job: st.job });
      Object.assign(record, { applied: out.applied, note: out.note });
      record.vms.push(...(out.killedVms ?? []));
      if (out.signalled) this.markSignalled(out.signalled);
      if (NEXT_VM_FAULTS.has(card.action.kind)) this.awaitingVm.push(record);
    } catch (err) {
      record.note = `injection failed: ${(err as Error).message}`;
    }
  }

  /** No more faults: the cards in hand are dropped. */
  stop(): void {
    this.stopped = true;
    for (const p of this.pending) clearTimeout(p.timer);
    this.pending = [];
    clearInterval(this.timer);
  }

  /** Cards drawn but never played (their phase never came). */
  get unplayed(): string[] {
    return this.pending.map((p) => label(p.card));
  }
}

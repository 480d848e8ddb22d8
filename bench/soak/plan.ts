// The fault plan: every fault the soak can inject, as cards in a per-slot
// deck. Each start (spawn) of a slot's agent draws "a fault or not" from the
// slot's own seeded stream, and a fault is the deck's next card; the deck
// holds every kind (and every phase of the phase-bound kinds), shuffled, so
// each run covers them all. A card says what happens and when: at once (when
// the spawn starts), in a phase of the loop (after a drawn delay), or between
// two cycles (after the loop exited, before launchd starts it again).
import type { Rng } from "./prng.ts";

/** Phases a loop writes to its state file (lib/slot/state.ts) while it works. */
export const KILL_PHASES = ["recover", "clone", "boot", "run", "job", "cleanup", "backoff"] as const;
export const DRAIN_PHASES = ["clone", "boot", "run", "job"] as const;
export type LoopPhase = (typeof KILL_PHASES)[number];

/** How long each phase typically lasts in the fast profile (ms): a drawn delay lands somewhere in it. */
const PHASE_SPAN_MS: Record<LoopPhase, number> = { recover: 300, clone: 200, boot: 800, run: 400, job: 1500, cleanup: 200, backoff: 1500 };

export type GitHubFault = "5xx" | "429" | "403-secondary" | "403-primary" | "drop" | "slow";
export type Endpoint = "jit" | "delete" | "list";

export type Action =
  | { kind: "github"; fault: GitHubFault; endpoint: Endpoint; count: number; status?: number; retryAfterS?: number; latencyMs?: number }
  | { kind: "token-revoked" }
  | { kind: "clone-fail" }
  | { kind: "no-ip" }
  | { kind: "start-failure" }
  /** sim/tart's crash fault: the VM dies `afterMs` after its sshd answers (while the runner listens or the job runs). */
  | { kind: "crash-fault"; afterMs: number }
  /** The VM's `tart run` is SIGKILLed: a VM dying while it boots, or mid-job. */
  | { kind: "vm-killed" }
  | { kind: "ssh-drop" }
  /** The guest's runner is stopped before it gets a job: it exits without one. */
  | { kind: "runner-exit" }
  | { kind: "runner-retired" }
  | { kind: "kill" }
  | { kind: "drain" }
  /** Both slots' loops, VMs and guests killed at once; launchd starts the agents again. */
  | { kind: "reboot" }
  | { kind: "state-lost" }
  | { kind: "state-garbage" }
  /** slot-N.lock and the credentials lock left naming an unrelated live process. */
  | { kind: "stale-lock" };

export type Trigger =
  | { at: "start" }
  | { at: "between" }
  | { at: "phase"; phase: LoopPhase; delayMs: number }
  /** After the runner printed "Listening for Jobs": a queued job is assigned about 50 ms later (the sim's assignDelayMs). */
  | { at: "listening"; delayMs: number };

export interface Card {
  action: Action;
  trigger: Trigger;
}

export const label = (c: Card): string =>
  `${c.action.kind === "github" ? `github-${c.action.fault}-${c.action.endpoint}` : c.action.kind}${c.trigger.at === "phase" ? `@${c.trigger.phase}` : c.trigger.at === "start" ? "" : `@${c.trigger.at}`}`;

const inPhase = (r: Rng, phase: LoopPhase): Trigger => ({ at: "phase", phase, delayMs: Math.round(r.next() * PHASE_SPAN_MS[phase]) });

/** One of each card kind for this slot, parameters drawn now (so the seed fixes them). */
function oneOfEach(r: Rng, slot: number): Card[] {
  const start: Trigger = { at: "start" };
  const github = (fault: GitHubFault, endpoint: Endpoint, extra: Partial<Extract<Action, { kind: "github" }>> = {}): Card => ({
    action: { kind: "github", fault, endpoint, count: 1, ...extra }, trigger: start,
  });
  const cards: Card[] = [
    ...KILL_PHASES.map((p) => ({ action: { kind: "kill" } as Action, trigger: inPhase(r, p) })),
    ...DRAIN_PHASES.map((p) => ({ action: { kind: "drain" } as Action, trigger: inPhase(r, p) })),
    // Just before (or just after) GitHub assigns the queued job to the runner that just started listening.
    { action: { kind: "drain" }, trigger: { at: "listening", delayMs: r.int(0, 80) } },
    github("5xx", "jit", { status: r.pick([500, 502, 503]), count: r.int(1, 5) }),
    github("5xx", r.pick(["delete", "list"] as const), { status: r.pick([500, 502, 503]), count: r.int(1, 5) }),
    github("429", "jit", { retryAfterS: r.int(1, 3) }),
    github("403-secondary", r.pick(["jit", "delete"] as const), { retryAfterS: r.int(1, 3) }),
    github("403-primary", "jit", { retryAfterS: r.int(1, 3) }),
    github("drop", "jit"),
    github("drop", "delete"),
    github("slow", r.pick(["jit", "delete"] as const), { latencyMs: r.int(1000, 5000), count: r.int(1, 2) }),
    { action: { kind: "token-revoked" }, trigger: r.chance(0.5) ? start : inPhase(r, "boot") },
    { action: { kind: "clone-fail" }, trigger: start },
    { action: { kind: "no-ip" }, trigger: start },
    { action: { kind: "start-failure" }, trigger: start },
    { action: { kind: "crash-fault", afterMs: r.int(0, 2500) }, trigger: start },
    { action: { kind: "vm-killed" }, trigger: inPhase(r, "boot") },
    { action: { kind: "vm-killed" }, trigger: inPhase(r, "job") },
    { action: { kind: "ssh-drop" }, trigger: inPhase(r, "job") },
    { action: { kind: "runner-exit" }, trigger: inPhase(r, "run") },
    { action: { kind: "runner-retired" }, trigger: inPhase(r, "run") },
    { action: { kind: "state-lost" }, trigger: { at: "between" } },
    { action: { kind: "state-lost" }, trigger: inPhase(r, r.pick(KILL_PHASES)) },
    { action: { kind: "state-garbage" }, trigger: { at: "between" } },
    { action: { kind: "state-garbage" }, trigger: inPhase(r, r.pick(KILL_PHASES)) },
    { action: { kind: "stale-lock" }, trigger: { at: "between" } },
  ];
  // A reboot takes the whole host down, so one slot's deck carries it.
  if (slot === 1) cards.push({ action: { kind: "reboot" }, trigger: inPhase(r, r.pick(["boot", "run", "job", "cleanup"] as const)) });
  return cards;
}

/** A slot's fault deck: each kind once per pass, shuffled; endless. */
export class Deck {
  private cards: Card[] = [];
  constructor(
    private readonly r: Rng,
    private readonly slot: number,
    /** The chance that a spawn gets a fault at all. */
    private readonly rate: number,
  ) {}

  /** What this spawn gets: a card, or nothing. */
  draw(): Card | undefined {
    if (!this.r.chance(this.rate)) return undefined;
    if (this.cards.length === 0) this.cards = this.r.shuffle(oneOfEach(this.r, this.slot));
    return this.cards.pop();
  }
}

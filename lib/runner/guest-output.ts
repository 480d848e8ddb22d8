// The guest's output in the slot log: status lines at info (`runner.<kind>`),
// the rest at debug (`guest.output`), each redacted, cut, and rate-capped per
// level, so a chatty or hostile guest cannot fill the disk or crowd them out.
import type { Level, Logger } from "../core/log.ts";
import { redact } from "../core/redact.ts";
import type { RunnerEvent } from "./status-lines.ts";

interface GuestOutputLimits {
  lineChars: number;
  /** Per level; the others are counted, then reported. */
  linesPerMinute: number;
}

export const GUEST_OUTPUT_LIMITS: GuestOutputLimits = { lineChars: 500, linesPerMinute: 120 };

const MINUTE_MS = 60_000;
type GuestLevel = Extract<Level, "info" | "debug">;

export class GuestOutput {
  private windowStart = Number.NEGATIVE_INFINITY;
  private readonly written: Record<GuestLevel, number> = { info: 0, debug: 0 };
  private readonly dropped: Record<GuestLevel, number> = { info: 0, debug: 0 };

  constructor(
    private readonly log: Logger,
    private readonly limits: GuestOutputLimits = GUEST_OUTPUT_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  line(text: string, stream: "stdout" | "stderr", event: RunnerEvent | undefined): void {
    const level: GuestLevel = event ? "info" : "debug";
    if (this.now() - this.windowStart >= MINUTE_MS) {
      this.reportDropped();
      this.windowStart = this.now();
      this.written.info = this.written.debug = 0;
    }
    if (this.written[level] >= this.limits.linesPerMinute) {
      this.dropped[level]++;
      return;
    }
    this.written[level]++;
    // Redacted before it is cut, so a cut never leaves a secret's head too short to be recognised.
    const clean = redact(text);
    const cut = clean.length > this.limits.lineChars;
    this.log[level](event ? `runner.${event.kind}` : "guest.output", cut ? `${clean.slice(0, this.limits.lineChars)}…[truncated]` : clean, {
      stream,
      ...(cut ? { truncated: true, chars: clean.length } : {}),
    });
  }

  close(): void {
    this.reportDropped();
  }

  private reportDropped(): void {
    for (const level of ["info", "debug"] as const) {
      const n = this.dropped[level];
      if (n === 0) continue;
      this.dropped[level] = 0;
      this.log[level]("guest.output_dropped", `${n} guest line${n === 1 ? "" : "s"} not logged: more than ${this.limits.linesPerMinute} a minute`, { dropped: n });
    }
  }
}

// The primary rate limit: one hourly budget on the sim clock, reported in
// x-ratelimit-* headers on every API response.
import type { Clock } from "./clock.ts";

const WINDOW_MS = 3_600_000;

export class RateLimit {
  used = 0;
  private windowStart: number;

  constructor(
    private readonly clock: Clock,
    public limit: number,
  ) {
    this.windowStart = clock.now();
  }

  private roll(): void {
    if (this.clock.now() >= this.windowStart + WINDOW_MS) {
      this.windowStart = this.clock.now();
      this.used = 0;
    }
  }

  /** Counts one call; false when the budget was already spent. */
  spend(): boolean {
    this.roll();
    if (this.used >= this.limit) return false;
    this.used++;
    return true;
  }

  headers(exhausted = false): Record<string, string> {
    this.roll();
    return {
      "x-ratelimit-limit": String(this.limit),
      "x-ratelimit-remaining": exhausted ? "0" : String(Math.max(0, this.limit - this.used)),
      "x-ratelimit-used": String(exhausted ? this.limit : this.used),
      "x-ratelimit-reset": String(Math.ceil((this.windowStart + WINDOW_MS) / 1000)),
      "x-ratelimit-resource": "core",
    };
  }
}

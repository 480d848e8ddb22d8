// The sim's clock: host time plus an offset tests can move, so tokens and
// JWTs can expire or skew without waiting.
export class Clock {
  constructor(public offsetMs = 0) {}

  now(): number {
    return Date.now() + this.offsetMs;
  }

  nowS(): number {
    return Math.floor(this.now() / 1000);
  }

  iso(ms = this.now()): string {
    return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
  }
}

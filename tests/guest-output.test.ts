// What of the guest's output reaches the slot log (lib/runner/run.ts):
// status lines at info, the rest at debug, redacted, cut and rate-capped.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { createLogger } from "../lib/core/log.ts";
import { registerSecretFragments } from "../lib/core/redact.ts";
import { GuestOutput, parseRunnerLine } from "../lib/runner/run.ts";

function setup(limits = { lineChars: 500, linesPerMinute: 120 }) {
  let text = "";
  const stream = new Writable({ write: (chunk, _e, done) => ((text += String(chunk)), done()) });
  const log = createLogger({ stream, format: "json", verbose: true, fields: { slot: 1 } });
  let now = 1_000_000;
  const out = new GuestOutput(log, limits, () => now);
  const feed = (line: string, stream: "stdout" | "stderr" = "stdout") => out.line(line, stream, parseRunnerLine(line));
  return {
    out,
    feed,
    advance: (ms: number) => (now += ms),
    lines: () => text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe("levels", () => {
  test("the runner's status lines at info as runner.<kind>; anything else at debug as guest.output, with its stream", () => {
    const g = setup();
    g.feed("2026-11-28 06:30:00Z: Listening for Jobs");
    g.feed("Host key verification failed.", "stderr");
    g.feed("debug: loading plugins");
    expect(g.lines().map((l) => [l.level, l.event, l.stream, l.msg])).toEqual([
      ["info", "runner.listening", "stdout", "2026-11-28 06:30:00Z: Listening for Jobs"],
      ["debug", "guest.output", "stderr", "Host key verification failed."],
      ["debug", "guest.output", "stdout", "debug: loading plugins"],
    ]);
  });

  test("without verbose the guest's other lines are not written at all; its status lines are", () => {
    let text = "";
    const stream = new Writable({ write: (chunk, _e, done) => ((text += String(chunk)), done()) });
    const out = new GuestOutput(createLogger({ stream, format: "json" }));
    for (const line of ["debug: noise", "√ Connected to GitHub"]) out.line(line, "stdout", parseRunnerLine(line));
    expect(text.trim().split("\n").map((l) => JSON.parse(l).event)).toEqual(["runner.connected"]);
  });
});

describe("length", () => {
  test("a line longer than the cap is cut and marked truncated with its full length; a shorter one is whole", () => {
    const g = setup({ lineChars: 50, linesPerMinute: 120 });
    g.feed("x".repeat(50));
    g.feed("y".repeat(80));
    const [whole, cut] = g.lines();
    expect(whole!.msg).toBe("x".repeat(50));
    expect(whole!.truncated).toBeUndefined();
    expect(cut!.msg).toBe(`${"y".repeat(50)}…[truncated]`);
    expect(cut).toMatchObject({ truncated: true, chars: 80 });
  });

  test("a secret across the cut is redacted before the line is cut: no head of it is left", () => {
    const secret = randomBytes(60).toString("base64");
    registerSecretFragments(secret);
    const g = setup({ lineChars: 50, linesPerMinute: 120 });
    // 30 characters of text, then the secret: a cut at 50 would leave 20 characters of it, too few to recognise.
    g.feed(`${"a".repeat(30)}${secret} tail`);
    const msg = g.lines()[0]!.msg as string;
    expect(msg).toStartWith(`${"a".repeat(30)}[REDACTED] tail`);
    expect(msg).not.toContain(secret.slice(0, 10));
  });
});

describe("rate", () => {
  test("past the cap in a minute lines are dropped, then one line says how many; the next minute logs again", () => {
    const g = setup({ lineChars: 500, linesPerMinute: 5 });
    for (let i = 0; i < 12; i++) g.feed(`noise ${i}`);
    expect(g.lines().map((l) => l.msg)).toEqual([0, 1, 2, 3, 4].map((i) => `noise ${i}`));
    g.advance(60_000);
    g.feed("noise after a minute");
    const after = g.lines().slice(5);
    expect(after.map((l) => [l.level, l.event, l.dropped])).toEqual([["debug", "guest.output_dropped", 7], ["debug", "guest.output", undefined]]);
    expect(after[0]!.msg).toBe("7 guest lines not logged: more than 5 a minute");
  });

  test("status lines have their own budget: a flood of other lines does not hide them", () => {
    const g = setup({ lineChars: 500, linesPerMinute: 3 });
    for (let i = 0; i < 50; i++) g.feed(`noise ${i}`);
    g.feed("2026-11-28 06:30:01Z: Running job: build");
    expect(g.lines().filter((l) => l.level === "info").map((l) => l.event)).toEqual(["runner.job-started"]);
  });

  test("close() reports what was dropped since the last report, once", () => {
    const g = setup({ lineChars: 500, linesPerMinute: 2 });
    for (let i = 0; i < 4; i++) g.feed(`noise ${i}`);
    g.out.close();
    g.out.close();
    expect(g.lines().filter((l) => l.event === "guest.output_dropped").map((l) => l.dropped)).toEqual([2]);
  });
});

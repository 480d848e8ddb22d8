import { expect, test } from "bun:test";
import { parseRunnerLine } from "../lib/runner/run.ts";

test("the runner's own log lines are recognised (contracts/github.md §4)", () => {
  expect(parseRunnerLine("√ Connected to GitHub")).toEqual({ kind: "connected" });
  expect(parseRunnerLine("2026-09-16 15:14:46Z: Listening for Jobs")).toEqual({ kind: "listening" });
  expect(parseRunnerLine("2026-09-16 15:14:50Z: Running job: build (macOS)")).toEqual({ kind: "job-started", job: "build (macOS)" });
  expect(parseRunnerLine("2026-09-16 15:15:50Z: Job build (macOS) completed with result: Failed")).toEqual({ kind: "job-completed", job: "build (macOS)", result: "Failed" });
  expect(parseRunnerLine("The runner no longer exists on the server. Cleaning up local configuration.")).toEqual({ kind: "runner-gone" });
  expect(parseRunnerLine("A session for this runner already exists.")).toEqual({ kind: "session-conflict" });
});

test("job output that merely mentions those words is not mistaken for them", () => {
  expect(parseRunnerLine("echo Listening for Jobs")).toBeUndefined();
  expect(parseRunnerLine("Running job: fake")).toBeUndefined();
  expect(parseRunnerLine("Current runner version: '2.336.0'")).toBeUndefined();
});

import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { createLogger, type LoggerOptions } from "../lib/core/log.ts";
import { registerSecret } from "../lib/core/redact.ts";

/** A stream that keeps what was written, as a launchd log file or a terminal would. */
function capture(isTTY?: boolean) {
  const chunks: string[] = [];
  const stream = Object.assign(
    new Writable({
      write(chunk, _encoding, done) {
        chunks.push(String(chunk));
        done();
      },
    }),
    isTTY === undefined ? {} : { isTTY },
  );
  return {
    stream,
    text: () => chunks.join(""),
    lines: () => chunks.join("").split("\n").filter((l) => l !== ""),
  };
}

const NOW = new Date("2026-11-28T06:30:00.123Z");

function logTo(format: "json" | "text", opts: LoggerOptions = {}) {
  const out = capture();
  const log = createLogger({ stream: out.stream, format, now: () => NOW, ...opts });
  return { log, out };
}

describe("JSON lines", () => {
  test("one parseable line per event with the keys in order", () => {
    const { log, out } = logTo("json", { fields: { slot: 1 } });
    log.info("boot.ready", "guest answered on SSH", { vm: "macos-runner-host-1-a1b2c3", runner: "acme-mac-host-1-1-x", phase: "boot", duration_ms: 812, ip: "192.168.64.5" });
    log.warn("cleanup.leftover", undefined, { vm: "old" });
    const lines = out.lines();
    expect(out.text().endsWith("\n")).toBe(true);
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]!);
    expect(Object.keys(first)).toEqual(["time", "level", "event", "msg", "slot", "vm", "runner", "phase", "duration_ms", "ip"]);
    expect(first).toEqual({
      time: "2026-11-28T06:30:00.123Z",
      level: "info",
      event: "boot.ready",
      msg: "guest answered on SSH",
      slot: 1,
      vm: "macos-runner-host-1-a1b2c3",
      runner: "acme-mac-host-1-1-x",
      phase: "boot",
      duration_ms: 812,
      ip: "192.168.64.5",
    });
    expect(JSON.parse(lines[1]!)).toEqual({ time: "2026-11-28T06:30:00.123Z", level: "warn", event: "cleanup.leftover", slot: 1, vm: "old" });
  });

  test("the default format follows the stream: JSON unless it is a TTY", () => {
    const file = capture();
    createLogger({ stream: file.stream }).info("e");
    expect(JSON.parse(file.lines()[0]!).event).toBe("e");
    const tty = capture(true);
    createLogger({ stream: tty.stream, now: () => NOW }).info("e");
    expect(tty.lines()[0]).toBe("06:30:00.123 INFO  e");
  });

  test("errors become {name, message, status}, without request or response", () => {
    const { log, out } = logTo("json");
    const err = Object.assign(new TypeError("fetch failed"), { status: 502, request: { headers: { "x-custom": "kept-out" } } });
    log.error("token.failed", "GitHub refused", { err, list: [new Error("inner")] });
    const line = JSON.parse(out.lines()[0]!);
    expect(line.err).toEqual({ name: "TypeError", message: "fetch failed", status: 502 });
    expect(line.list).toEqual([{ name: "Error", message: "inner" }]);
    expect(out.text()).not.toContain("kept-out");
  });

  test("awkward values serialise without throwing", () => {
    const { log, out } = logTo("json");
    const loop: Record<string, unknown> = { name: "a" };
    loop.self = loop;
    log.info("odd", "", { big: 10n, bytes: new Uint8Array(3), loop, when: NOW, gone: undefined, fn: () => 1, set: new Set([1]), map: new Map([["k", 2]]) });
    const line = JSON.parse(out.lines()[0]!);
    expect(line).toMatchObject({ big: "10", bytes: "[3 bytes]", loop: { name: "a", self: "[Circular]" }, when: NOW.toISOString(), set: [1], map: { k: 2 } });
    expect("gone" in line || "fn" in line || "msg" in line).toBe(false);
  });

  test("a field named like a line key does not overwrite it", () => {
    const { log, out } = logTo("json");
    log.info("e", "m", { time: 5, level: "x", event: "y", msg: "z" });
    expect(JSON.parse(out.lines()[0]!)).toMatchObject({ time: NOW.toISOString(), level: "info", event: "e", msg: "m", field_time: 5, field_level: "x", field_event: "y", field_msg: "z" });
  });
});

describe("text lines", () => {
  test("the documented shape, colourless", () => {
    const { log, out } = logTo("text");
    log.info("boot.ready", "guest up", { slot: 1, vm: "x", runner: "y", phase: "boot", duration_ms: 812, ip: "192.168.64.5", attempts: 2 });
    expect(out.lines()).toEqual(["06:30:00.123 INFO  boot.ready slot=1 vm=x runner=y phase=boot 812ms  guest up  ip=192.168.64.5 attempts=2"]);
    log.error("e");
    expect(out.lines()[1]).toBe("06:30:00.123 ERROR e");
    expect(out.text()).not.toContain("\u001b");
  });

  test("newlines, quotes and escape codes stay on one line; values with spaces are quoted", () => {
    const { log, out } = logTo("text");
    log.warn("ssh.output", "first\nsecond\r\n\u001b[31mred", { path: "/Users/admin/Library/Application Support/x", note: 'say "hi"', obj: { a: "b\nc" }, empty: "" });
    const lines = out.lines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(
      String.raw`06:30:00.123 WARN  ssh.output  first\nsecond\r\n\u001b[31mred  path="/Users/admin/Library/Application Support/x" note="say \"hi\"" obj={"a":"b\nc"} empty=""`,
    );
  });
});

describe("secrets never reach the stream", () => {
  // Each shape as it is logged, and the part of it that must not appear in the output.
  const shaped: Record<string, { text: string; secret: string }> = {
    "GitHub token": { text: "ghs_16C7e42F292c6912E7710c838347Ae178B4a", secret: "16C7e42F292c6912E7710c838347Ae178B4a" },
    "stateless ghs_APPID_JWT": { text: "ghs_123456_eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjM0NTYifQ.c2lnbmF0dXJlLWJ5dGVz", secret: "eyJhbGciOiJSUzI1NiJ9" },
    "fine-grained PAT": { text: "github_pat_11ABCDEFG0123456789abc_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", secret: "11ABCDEFG0123456789abc" },
    JWT: { text: "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjM0NTYifQ.c2lnbmF0dXJlLWJ5dGVz", secret: "eyJpc3MiOiIxMjM0NTYifQ" },
    "private key": { text: "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----", secret: "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" },
    "Authorization header": { text: "Authorization: token s3cretheaderval", secret: "s3cretheaderval" },
    "Bearer value": { text: "Bearer s3cretbearerval", secret: "s3cretbearerval" },
    "password in a URL": { text: "https://ci:hunter2hunter2@registry.example.com/v2/", secret: "hunter2hunter2" },
    "secret-named key": { text: "registration_token=AABF3JGZDX3P5PMEXLND6TS6", secret: "AABF3JGZDX3P5PMEXLND6TS6" },
    "secret flag": { text: "./run.sh --jitconfig eyJfake0jitconfig0value", secret: "eyJfake0jitconfig0value" },
  };

  for (const format of ["json", "text"] as const) {
    for (const [kind, { text: secret, secret: core }] of Object.entries(shaped)) {
      test(`${format}: ${kind} in msg, in a nested field and in an Error's message`, () => {
        const { log, out } = logTo(format);
        log.info("a", `got ${secret} back`);
        log.info("b", "", { response: { body: { detail: [secret] } } });
        log.error("c", "failed", { err: new Error(`request with ${secret} refused`) });
        const text = out.text();
        expect(text).not.toContain(core);
        expect(text.match(/\[REDACTED/g)).toHaveLength(3);
        if (format === "json") for (const line of out.lines()) JSON.parse(line);
        expect(out.lines()).toHaveLength(3);
      });
    }

    test(`${format}: a registered secret in raw, base64 and URL-encoded form`, () => {
      const password = `pw-${randomBytes(6).toString("hex")}`;
      registerSecret(password);
      const { log, out } = logTo(format);
      log.info("login", `registry password ${password}`, {
        basic: Buffer.from(password).toString("base64"),
        query: `https://example.com/?p=${encodeURIComponent(password)}`,
      });
      expect(out.text()).not.toContain(password);
      expect(out.text()).not.toContain(Buffer.from(password).toString("base64"));
      expect(out.text().match(/\[REDACTED\]/g)).toHaveLength(3);
    });

    test(`${format}: a registered JIT config, encoded and decoded`, () => {
      const runnerToken = randomBytes(16).toString("hex");
      const decoded = JSON.stringify({ ".credentials": Buffer.from(JSON.stringify({ token: runnerToken })).toString("base64") });
      const jit = Buffer.from(decoded).toString("base64");
      registerSecret(jit);
      const { log, out } = logTo(format);
      log.debug("never", "shown");
      log.info("jit", jit, { decoded, nested: { stdin: `ACTIONS_RUNNER_INPUT_JITCONFIG=${jit}` } });
      expect(out.text()).not.toContain(jit.slice(0, 20));
      expect(out.text()).not.toContain(decoded.slice(0, 20));
      if (format === "json") {
        expect(JSON.parse(out.lines()[0]!)).toMatchObject({ msg: "[REDACTED]", decoded: "[REDACTED]", nested: { stdin: "ACTIONS_RUNNER_INPUT_JITCONFIG=[REDACTED]" } });
      }
    });
  }

  for (const format of ["json", "text"] as const) {
    test(`${format}: a git SHA, digests, URLs, temp paths and names pass through while every registered secret is removed`, () => {
      const password = `pw-${randomBytes(8).toString("hex")}`;
      const pat = `pat-${randomBytes(8).toString("hex")}`;
      registerSecret(password);
      registerSecret(pat);
      const ordinary = {
        vm: "macos-runner-mini-07-1-Zk9xR2tLbTNQcVd6VjhuQjFoWTVjRDdlRzBqUzRhTnU",
        runner: "acme-mac-mini-07-1-k3x9q2",
        sha: "3f786850e387550fdab836ed7e6dc881de23001b",
        digest: `sha256:${randomBytes(32).toString("hex")}`,
        layer: randomBytes(32).toString("hex"),
        url: "https://github.com/acme/app/actions/runs/1234567890/job/98765432101?pr=42&check_suite_focus=true",
        tmp: "/var/folders/7p/9rt0m1xn3kq5g2h8vwzs4l0c0000gn/T/tmp.Xq3vB9kLmN/_diag/Runner_20261128-063000-utc.log",
        path: "/Users/admin/Library/Application Support/macos-runner/slot-1/state.json",
        at: "2026-11-28T06:30:00.123Z",
        ip: "192.168.64.5",
      };
      const { log, out } = logTo(format);
      log.info("pinned", `checked out ${ordinary.sha} from ${ordinary.url}`, {
        ...ordinary,
        secrets: [password, Buffer.from(password).toString("base64"), encodeURIComponent(pat), `"${pat}"`],
      });
      const text = out.text();
      for (const value of Object.values(ordinary)) expect(text).toContain(value);
      expect(text).toContain(`checked out ${ordinary.sha} from ${ordinary.url}`);
      for (const secret of [password, pat, Buffer.from(password).toString("base64")]) expect(text).not.toContain(secret);
      expect(text.match(/\[REDACTED\]/g)).toHaveLength(4);
      if (format === "json") expect(JSON.parse(out.lines()[0]!)).toMatchObject(ordinary);
    });
  }
});

describe("child, time, levels", () => {
  test("child() merges its fields into every event; later fields win; undefined never blanks one", () => {
    const { log, out } = logTo("json", { fields: { slot: 2 } });
    const vmLog = log.child({ vm: "vm-1", phase: "clone" }).child({ phase: "boot", runner: undefined });
    vmLog.info("x", "", { vm: undefined, extra: 1 });
    log.info("y");
    const [first, second] = out.lines().map((l) => JSON.parse(l));
    expect(first).toEqual({ time: NOW.toISOString(), level: "info", event: "x", slot: 2, vm: "vm-1", phase: "boot", extra: 1 });
    expect(second).toEqual({ time: NOW.toISOString(), level: "info", event: "y", slot: 2 });
  });

  test("time() logs the elapsed integer milliseconds and returns them", () => {
    const { log, out } = logTo("json");
    const done = log.child({ vm: "vm-1" }).time("clone.done", { phase: "clone" });
    const started = performance.now();
    while (performance.now() - started < 25) {
      // spin until the clock has moved a known amount
    }
    const ms = done("cloned", { image: "img" });
    expect(Number.isInteger(ms)).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(25);
    expect(ms).toBeLessThan(5_000);
    expect(JSON.parse(out.lines()[0]!)).toEqual({ time: NOW.toISOString(), level: "info", event: "clone.done", msg: "cloned", vm: "vm-1", phase: "clone", duration_ms: ms, image: "img" });
  });

  test("debug events only when verbose", () => {
    const quiet = logTo("json");
    quiet.log.debug("d", "hidden");
    quiet.log.info("i");
    expect(quiet.out.lines().map((l) => JSON.parse(l).event)).toEqual(["i"]);
    const loud = logTo("text", { verbose: true });
    loud.log.debug("d", "shown");
    expect(loud.out.lines()).toEqual(["06:30:00.123 DEBUG d  shown"]);
  });

  test("an unknown format is refused by name", () => {
    expect(() => createLogger({ format: "xml" as "json" })).toThrow(/format must be "json" or "text", got 'xml'/);
  });
});

// lib/schema: any document checked with a zod schema reports every problem
// with its key path (and line, for YAML), unknown keys with "did you mean".
import { describe, expect, test } from "bun:test";
import { z } from "zod";
import { formatProblem, parseJson, parseYaml, validate } from "../lib/core/schema/index.ts";

// A state-file-like document: nested objects, a list of objects, optional keys.
const State = z.strictObject({
  phase: z.enum(["idle", "clone", "run"]),
  vm: z.string().optional(),
  failures: z.number(),
  runners: z.array(z.strictObject({ id: z.number(), name: z.string() })).optional(),
  lock: z.strictObject({ pid: z.number(), since: z.string() }).optional(),
});

describe("parseJson", () => {
  test("a valid document is returned as the schema's output", () => {
    expect(parseJson(State, '{"phase":"run","vm":"mr-1","failures":0}')).toEqual({ ok: true, value: { phase: "run", vm: "mr-1", failures: 0 } });
  });

  test("every problem at once, with key paths; unknown keys get a suggestion, or the list of keys", () => {
    const r = parseJson(State, JSON.stringify({ phase: "run", failurs: 1, runners: [{ id: 1, name: "a" }, { id: "2", name: "b", nmae: "c" }], lock: { pid: 1, since: 5, colour: 1 } }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.path).sort()).toEqual(["failures", "failurs", "lock.colour", "lock.since", "runners[1].id", "runners[1].nmae"]);
    const byPath = Object.fromEntries(r.problems.map((p) => [p.path, p.message]));
    expect(byPath.failurs).toBe("unknown key; did you mean failures?");
    expect(byPath["runners[1].nmae"]).toBe("unknown key; did you mean name?");
    expect(byPath["lock.colour"]).toBe("unknown key; expected one of: pid, since");
    expect(r.problems.every((p) => p.line === undefined)).toBe(true);
  });

  test("text that is not JSON is one problem for the whole document", () => {
    const r = parseJson(State, '{"phase": "run",');
    expect(r).toMatchObject({ ok: false, problems: [{ path: "" }] });
    if (!r.ok) expect(r.problems[0]?.message).toStartWith("invalid JSON: ");
  });
});

describe("validate", () => {
  test("checks data parsed elsewhere, and drops a message repeated at the same path", () => {
    const positive = z.number().refine(Number.isInteger, "must be a positive integer").min(1, "must be a positive integer");
    const r = validate(z.object({ n: positive }), { n: -1.5 });
    expect(r).toEqual({ ok: false, problems: [{ path: "n", message: "must be a positive integer" }] });
  });
});

describe("parseYaml", () => {
  test("problems carry the line of their key or list item and come in file order, missing keys last", () => {
    const yaml = ["failures: x", "phase: run", "runners:", "  - id: 1", "    name: a", "  - id: two", "    name: b", "lock:", "  pid: 1", "  sincee: now", ""].join("\n");
    const r = parseYaml(State, yaml);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map(formatProblem)).toEqual([
      expect.stringMatching(/^line 1: failures: /),
      expect.stringMatching(/^line 6: runners\[1\]\.id: /),
      "line 10: lock.sincee: unknown key; did you mean since?",
      expect.stringMatching(/^lock\.since: /),
    ]);
  });

  test("an empty value counts as absent; aliases are followed", () => {
    const r = parseYaml(State, "phase: &p run\nvm:\nfailures: 0\nlock: { pid: 7, since: *p }\n");
    expect(r).toEqual({ ok: true, value: { phase: "run", failures: 0, lock: { pid: 7, since: "run" } } });
  });

  test("a key that is not a plain name is a problem at its line", () => {
    const r = parseYaml(State, "phase: run\nfailures: 0\n1: x\n");
    expect(r).toEqual({ ok: false, problems: [{ path: "", line: 3, message: "keys must be plain names, got 1" }] });
  });

  test("after a syntax error nothing else is checked", () => {
    const r = parseYaml(State, "phase: run\nphase: idle\nbogus: 1\n");
    expect(r).toEqual({ ok: false, problems: [{ path: "", line: 2, message: "invalid YAML: Map keys must be unique" }] });
  });
});

describe("parseYaml refuses documents that are not trees of reasonable size", () => {
  const Any = z.record(z.string(), z.unknown());

  test("an alias to a list that contains it", () => {
    expect(parseYaml(Any, "a: &x [1, *x]\n")).toEqual({ ok: false, problems: [{ path: "a[1]", line: 1, message: "an alias refers to a mapping or list that contains it" }] });
  });

  test("an alias bomb", () => {
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++) levels.push(`${"abcdefghij"[i]}: &${"abcdefghij"[i]} [${Array(10).fill(`*${"abcdefghij"[i - 1]}`).join(", ")}]`);
    const started = performance.now();
    const r = parseYaml(Any, `${levels.join("\n")}\n`);
    expect(r.ok ? [] : r.problems.map((p) => p.message)).toEqual(["more than 1000 aliases; write the values out"]);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

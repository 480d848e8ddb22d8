// The one exit table, as docs/operating.md shows it to operators, is the code's.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT_TABLE } from "../lib/core/errors.ts";

test("docs/operating.md's exit table lists every kind with its code and meaning, and nothing else", () => {
  const doc = readFileSync(join(import.meta.dir, "..", "docs", "operating.md"), "utf8");
  const rows = [...doc.matchAll(/^\| (\d+) \| `([a-z-]+)` \| (.+) \|$/gm)].map(([, code, kind, meaning]) => [kind, Number(code), meaning]);
  expect(rows).toEqual(Object.entries(EXIT_TABLE).map(([kind, e]) => [kind, e.code, e.meaning]));
});

test("codes are unique", () => {
  const codes = Object.values(EXIT_TABLE).map((e) => e.code);
  expect(new Set(codes).size).toBe(codes.length);
});

// The import rule of lib/ and scripts/ (docs/architecture.md):
//   scripts -> slot, host -> github, vm, runner, image -> config -> core
// An import may go down or sideways within a layer, never up; nothing imports
// scripts/ (a command is a face, not a library); every lib file lives in a
// domain folder; and no two modules import each other, however indirectly.
import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";

const LAYERS: Record<string, number> = {
  "lib/core": 0,
  "lib/config": 1,
  "lib/github": 2, "lib/vm": 2, "lib/runner": 2, "lib/image": 2,
  "lib/slot": 3, "lib/host": 3,
  scripts: 4,
};

interface Violation {
  file: string;
  message: string;
}

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (e.endsWith(".ts") && !e.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

function domainOf(rel: string): string | undefined {
  if (rel.startsWith("scripts/")) return "scripts";
  const m = /^lib\/([^/]+)\//.exec(rel);
  return m && `lib/${m[1]}` in LAYERS ? `lib/${m[1]}` : undefined;
}

/** Relative imports of a TypeScript file (static, re-exports and dynamic), as repo paths. */
function importsOf(root: string, file: string): string[] {
  const path = join(root, file);
  const text = readFileSync(path, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm)) {
    out.push(relative(root, resolve(dirname(path), m[1]!)));
  }
  return out;
}

/** Every breach of the import rule under `root` (a repo or a test's planted tree). */
function checkLayers(root: string): Violation[] {
  const files = ["lib", "scripts"].flatMap((d) => {
    try {
      return sources(join(root, d));
    } catch {
      return [];
    }
  }).map((f) => relative(root, f));
  const violations: Violation[] = [];
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const from = domainOf(file);
    if (!from) {
      violations.push({ file, message: `${file} is not in a domain folder (${Object.keys(LAYERS).join(", ")})` });
      continue;
    }
    const edges: string[] = [];
    for (const target of importsOf(root, file)) {
      if (!target.startsWith("lib/") && !target.startsWith("scripts/")) continue;
      edges.push(target);
      const to = domainOf(target);
      if (to === "scripts") violations.push({ file, message: `${file} imports ${target}: nothing imports scripts/; move what both need into lib/` });
      else if (to && LAYERS[to]! > LAYERS[from]!) violations.push({ file, message: `${file} (${from}) imports ${target} (${to}), a higher layer` });
    }
    graph.set(file, edges);
  }
  for (const cycle of cycles(graph)) violations.push({ file: cycle[0]!, message: `import cycle: ${[...cycle, cycle[0]].join(" -> ")}` });
  return violations;
}

/** Strongly connected components of more than one module (Tarjan), each an import cycle. */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.reverse());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const ROOT = join(import.meta.dir, "..");

test("lib/ and scripts/ keep the import rule: no upward import, nothing imports scripts/, every lib file in a domain, no cycle", () => {
  expect(checkLayers(ROOT).map((v) => v.message)).toEqual([]);
});

test("a planted breach of each kind is found and named", () => {
  const root = mkdtempSync(join(tmpdir(), "layers-"));
  try {
    const put = (path: string, text: string) => {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    };
    put("lib/core/log.ts", 'import { x } from "../slot/cycle.ts";\n');
    put("lib/slot/cycle.ts", 'export const x = 1;\n');
    put("lib/vm/boot.ts", 'import { main } from "../../scripts/boot.ts";\n');
    put("scripts/boot.ts", 'export async function main() {}\n');
    put("scripts/loop.ts", 'const m = await import("./boot.ts");\n');
    put("lib/image/a.ts", 'import { b } from "./b.ts";\nexport const a = 1;\n');
    put("lib/image/b.ts", 'import { a } from "./a.ts";\nexport const b = 1;\n');
    put("lib/helpers.ts", "export {};\n");
    put("lib/github/ok.ts", 'import type { Config } from "../config/index.ts";\nimport { z } from "../core/schema/index.ts";\n');
    expect(checkLayers(root).map((v) => v.message).sort()).toEqual([
      "import cycle: lib/image/a.ts -> lib/image/b.ts -> lib/image/a.ts",
      "lib/core/log.ts (lib/core) imports lib/slot/cycle.ts (lib/slot), a higher layer",
      "lib/helpers.ts is not in a domain folder (lib/core, lib/config, lib/github, lib/vm, lib/runner, lib/image, lib/slot, lib/host, scripts)",
      "lib/vm/boot.ts imports scripts/boot.ts: nothing imports scripts/; move what both need into lib/",
      "scripts/loop.ts imports scripts/boot.ts: nothing imports scripts/; move what both need into lib/",
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

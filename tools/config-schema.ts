// Writes docs/config.schema.json, the config file's JSON Schema, from the
// schema the config loader checks with (lib/config/schema.ts), so editors
// complete and check config.yml (see docs/config.md). `--check` only reports
// whether the committed file is current (exit 1 when it is stale).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { configSchema } from "../lib/config/schema.ts";

export const SCHEMA_FILE = join(import.meta.dir, "..", "docs", "config.schema.json");

/** The JSON Schema text of the config file as written (snake_case keys, durations as text). */
export function renderConfigSchema(): string {
  // Paths are not checked while rendering; the source only has to exist.
  const schema = configSchema({ file: "/config.yml", base: { home: "/home", dir: "/" } });
  // draft-07: the draft editors' YAML and JSON language servers support best.
  const json = z.toJSONSchema(schema, { io: "input", target: "draft-07" });
  return `${JSON.stringify({ title: "macos-runner config.yml", ...json }, null, 2)}\n`;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { check: { type: "boolean", default: false } } });
  const text = renderConfigSchema();
  if (values.check) {
    const current = readFileSync(SCHEMA_FILE, "utf8") === text;
    console.log(current ? `${SCHEMA_FILE} is current` : `${SCHEMA_FILE} is stale; run: bun run tools/config-schema.ts`);
    process.exit(current ? 0 : 1);
  }
  writeFileSync(SCHEMA_FILE, text);
  console.log(`wrote ${SCHEMA_FILE}`);
}

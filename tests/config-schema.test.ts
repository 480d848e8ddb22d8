// docs/config.schema.json (what editors check config.yml with) and
// docs/config.md (the reference) stay what the config loader does.
import { afterAll, describe, expect, test } from "bun:test";
import Ajv from "ajv";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parse } from "yaml";
import { parseConfig } from "../lib/config/index.ts";
import { renderConfigSchema, SCHEMA_FILE } from "../tools/config-schema.ts";
import { APP_KEY_PEM } from "./fixtures/app-key.ts";

const ROOT = join(import.meta.dir, "..");
const committed = readFileSync(SCHEMA_FILE, "utf8");
const jsonSchema = JSON.parse(committed);
const check = new Ajv({ allErrors: true }).compile(jsonSchema);
const reference = readFileSync(join(ROOT, "docs", "config.md"), "utf8");
/** The YAML block under "## A complete example". */
const docExample = reference.split("## A complete example")[1]!.split("```yaml\n")[1]!.split("```")[0]!;

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

test("the committed JSON Schema is the one the config schema renders (run: bun run tools/config-schema.ts)", () => {
  expect(committed).toBe(renderConfigSchema());
});

describe("the JSON Schema, as an editor uses it", () => {
  test.each([
    ["tests/fixtures/config/full.yml", readFileSync(join(ROOT, "tests/fixtures/config/full.yml"), "utf8")],
    ["the complete example in docs/config.md", docExample],
    ["a config on vm.transport exec without vm.ssh", "github: { url: https://github.com/acme, token_path: pat }\nimage: { ref: x }\nvm: { transport: exec }\n"],
  ])("accepts %s", (_name, yaml) => {
    expect({ valid: check(parse(yaml)), errors: check.errors ?? null }).toEqual({ valid: true, errors: null });
  });

  test.each([
    ["an unknown key", { runner: { lables: ["a"] } }, "/runner", "additionalProperties"],
    ["a slot count over 2", { host: { slots: 3 } }, "/host/slots", "enum"],
    ["a duration without a unit", { runner: { job_timeout: "90" } }, "/runner/job_timeout", "pattern"],
    ["a string for an integer", { vm: { cpu: "4", ssh: { private_key_path: "k", known_hosts_path: "h" } } }, "/vm/cpu", "type"],
    ["a missing required key", { vm: { ssh: { private_key_path: "k" } } }, "/vm/ssh", "required"],
    ["vm.transport ssh without vm.ssh", { vm: { transport: "ssh" } }, "/vm", "required"],
  ])("flags %s", (_name, change, where, keyword) => {
    const base = { github: { url: "https://github.com/acme", token_path: "pat" }, image: { ref: "x" }, vm: { ssh: { private_key_path: "k", known_hosts_path: "h" } } };
    expect(check(base)).toBe(true);
    expect(check({ ...base, ...change })).toBe(false);
    expect(check.errors?.map((e) => [e.instancePath, e.keyword])).toContainEqual([where, keyword]);
  });
});

/** Every key that holds a value (not a section), with its JSON Schema and whether its section requires it. */
function leafKeys(schema: Record<string, any>, prefix = ""): { key: string; schema: Record<string, any>; required: boolean }[] {
  return Object.entries(schema.properties ?? {}).flatMap(([name, sub]: [string, any]) => {
    const key = prefix ? `${prefix}.${name}` : name;
    if (sub.type === "object") return leafKeys(sub, key);
    return [{ key, schema: sub, required: (schema.required ?? []).includes(name) }];
  });
}

/** The dotted paths of the values in a parsed YAML mapping. */
function keyPaths(value: unknown, prefix = ""): string[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return [prefix];
  return Object.entries(value).flatMap(([k, v]) => keyPaths(v, prefix ? `${prefix}.${k}` : k));
}

/** The reference's table rows: | `key` | type | default | meaning |. */
const rows = new Map(
  [...reference.matchAll(/^\| `([a-z_.]+)` \| ([^|]+) \| ([^|]+) \| (.+) \|$/gm)].map(([, key, type, dflt, meaning]) => [key!, { type: type!, dflt: dflt!.trim(), meaning: meaning! }]),
);

/** A default as the reference writes it: `6h`, `2`, `[self-hosted, macOS, ARM64]`. */
const asWritten = (v: unknown) => `\`${Array.isArray(v) ? `[${v.join(", ")}]` : String(v)}\``;

describe("docs/config.md", () => {
  const keys = leafKeys(jsonSchema);

  test("documents every key with its default, and no key that does not exist", () => {
    expect(keys.length).toBeGreaterThan(30);
    const documented = keys.map(({ key, schema, required }) => {
      const row = rows.get(key);
      const expected = required ? "**required**" : schema.default !== undefined ? asWritten(schema.default) : undefined;
      return { key, documented: row !== undefined, default: expected === undefined || row?.dflt.startsWith(expected) ? "ok" : row?.dflt };
    });
    expect(documented.filter((d) => !d.documented || d.default !== "ok")).toEqual([]);
    expect([...rows.keys()].filter((k) => !keys.some((s) => s.key === k))).toEqual([]);
  });

  test("its complete example is a config the loader accepts, with every key set but api_url, token_path, min_free_gb and id", () => {
    const home = mkdtempSync(join(tmpdir(), "config-doc-"));
    roots.push(home);
    const files: Record<string, string> = {
      ".config/macos-runner/app.pem": APP_KEY_PEM,
      ".config/macos-runner/registry-password": "x\n",
      ".ssh/macos-runner": "x\n",
      ".config/macos-runner/known_hosts": "macos-runner-guest ssh-ed25519 AAAA\n",
    };
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(dirname(join(home, path)), { recursive: true });
      writeFileSync(join(home, path), content, { mode: 0o600 });
    }
    const config = parseConfig(docExample, { file: join(home, ".config/macos-runner/config.yml"), env: { HOME: home } });
    expect(config.github.auth).toMatchObject({ kind: "app", appId: 123456 });
    const set = keyPaths(parse(docExample));
    // An old name still read (deprecated) is documented, but the example uses the new one.
    expect(keys.filter(({ key, schema }) => !set.includes(key) && !schema.deprecated).map((k) => k.key)).toEqual(["github.api_url", "github.token_path", "image.min_free_gb", "host.id"]);
  });
});

// Validates responses against GitHub's OpenAPI description (@octokit/openapi),
// status code by status code: one ajv
// instance per spec file, `#/components/` refs rewritten to an $id, and
// `nullable` without `type` turned into `anyOf [..., null]`.
// A server checks only the operations it serves: their part of the description
// (those operations and the components they reach) is cut out once and kept in
// dist/sim/, so a process reads kilobytes, not the 13 MB description (~0.4 s of CPU).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "../../lib/core/fs.ts";
import { DIST_SIM } from "../compiled.ts";
import Ajv, { type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";

export interface ResponseValidator {
  /** Problems with this response (empty when it matches the spec); an operation the spec lacks is one. */
  check(method: string, template: string, status: number, body: unknown): string[];
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

interface Spec {
  paths: Record<string, Record<string, { responses?: Record<string, Obj> }>>;
  components: Obj & { responses: Record<string, Obj> };
}

/** Seen from GitHub but missing from the spec for most operations (as reported in public issue threads). */
const UNDOCUMENTED_ERRORS = new Set([401, 403, 404, 422, 429]);

const SPEC_FILES = {
  api: "../../node_modules/@octokit/openapi/generated/api.github.com.json",
  ghec: "../../node_modules/@octokit/openapi/generated/ghec.json",
} as const;

function rewrite(node: Json, id: string): Json {
  if (Array.isArray(node)) return node.map((n) => rewrite(n, id));
  if (!node || typeof node !== "object") return node;
  const out: Obj = {};
  for (const [k, v] of Object.entries(node)) {
    out[k] = k === "$ref" && typeof v === "string" && v.startsWith("#/components/") ? `${id}${v}` : rewrite(v, id);
  }
  if (out.nullable === true && out.type === undefined) {
    const { nullable: _dropped, ...rest } = out;
    return { anyOf: [rest, { type: "null" }] };
  }
  return out;
}

class SpecValidator {
  private readonly spec: Spec;
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction | "no-body">();

  constructor(file: string, private readonly id: string, operations?: [string, string][]) {
    this.spec = operations ? servedPart(file, operations) : readSpec(file);
    this.ajv = new Ajv({ strict: false, allErrors: true, logger: false });
    addFormats(this.ajv);
    this.ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isInteger(n) });
    this.ajv.addFormat("timestamp", { validate: () => true });
    const { examples: _examples, ...components } = this.spec.components;
    this.ajv.addSchema({ $id: id, components: rewrite(components, id) });
  }

  has(method: string, template: string): boolean {
    return Boolean(this.spec.paths[template]?.[method.toLowerCase()]);
  }

  check(method: string, template: string, status: number, body: unknown): string[] {
    const where = `${method} ${template} -> ${status}`;
    const responses = this.spec.paths[template]![method.toLowerCase()]!.responses ?? {};
    let response = responses[String(status)];
    if (!response) {
      if (!UNDOCUMENTED_ERRORS.has(status)) return [`${where}: status not documented (documented: ${Object.keys(responses).join(", ")})`];
      response = { content: { "application/json": { schema: { $ref: "#/components/schemas/basic-error" } } } };
    }
    const key = `${where}`;
    let validate = this.compiled.get(key);
    if (!validate) {
      const ref = response.$ref;
      const resolved = typeof ref === "string" ? this.spec.components.responses[ref.split("/").pop()!]! : response;
      const schema = (resolved.content as Obj | undefined)?.["application/json"] as Obj | undefined;
      validate = schema?.schema ? this.ajv.compile(rewrite(schema.schema, this.id) as object) : "no-body";
      this.compiled.set(key, validate);
    }
    if (validate === "no-body") return body === undefined ? [] : [`${where}: the spec documents no body, got ${JSON.stringify(body).slice(0, 200)}`];
    if (validate(body)) return [];
    return [`${where}: ${this.ajv.errorsText(validate.errors, { dataVar: "body" })}`];
  }
}

const specPath = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const readSpec = (file: string) => JSON.parse(readFileSync(specPath(file), "utf8")) as Spec;

/** The description cut to these operations and the components they reach, cached by its inputs. */
function servedPart(file: string, operations: [string, string][]): Spec {
  const sorted = operations.map(([m, t]) => `${m.toLowerCase()} ${t}`).sort();
  const key = createHash("sha256")
    .update([specPath(file), statSync(specPath(file)).mtimeMs, statSync(fileURLToPath(import.meta.url)).mtimeMs, ...sorted].join("\n"))
    .digest("hex")
    .slice(0, 16);
  const cache = join(DIST_SIM, `openapi-${key}.json`);
  if (existsSync(cache)) return JSON.parse(readFileSync(cache, "utf8")) as Spec;
  const full = readSpec(file);
  const part: Spec = { paths: {}, components: { responses: {} } };
  const seen = new Set<string>();
  const reach = (node: Json): void => {
    if (Array.isArray(node)) return node.forEach(reach);
    if (!node || typeof node !== "object") return;
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string" && v.startsWith("#/components/") && !seen.has(v)) {
        seen.add(v);
        const [kind, name] = v.slice("#/components/".length).split("/") as [string, string];
        const target = (full.components[kind] as Obj | undefined)?.[name];
        if (target === undefined) continue;
        ((part.components[kind] ??= {}) as Obj)[name] = target;
        reach(target);
      } else reach(v);
    }
  };
  reach({ $ref: "#/components/schemas/basic-error" }); // the body of an undocumented error status
  for (const op of sorted) {
    const [method, template] = op.split(" ") as [string, string];
    const operation = full.paths[template]?.[method];
    if (!operation) continue;
    (part.paths[template] ??= {})[method] = operation;
    reach(operation.responses as Json);
  }
  mkdirSync(DIST_SIM, { recursive: true });
  // Another process may write it meanwhile: a rename replaces either atomically.
  writeFileAtomic(cache, JSON.stringify(part), 0o644, { sync: false });
  return part;
}

/** The descriptions and their compiled checks, read once per process: every fake GitHub of a test file shares them. */
const validators = new Map<string, SpecValidator>();
const validatorFor = (name: keyof typeof SPEC_FILES, operations?: [string, string][]) => {
  const key = `${name} ${operations ? operations.map((o) => o.join(" ")).sort().join(",") : "*"}`;
  let v = validators.get(key);
  if (!v) validators.set(key, (v = new SpecValidator(SPEC_FILES[name], name === "api" ? "gh" : "ghec", operations)));
  return v;
};

/**
 * Checks against the whole description, or with `operations` (a server's routes) against
 * just those; api.github.com.json is read now, ghec.json on the first enterprise path.
 */
export function loadResponseValidator(operations?: [string, string][]): ResponseValidator {
  const api = validatorFor("api", operations);
  return {
    check(method, template, status, body) {
      if (status >= 500) return []; // outages: real, and never described by the spec
      if (api.has(method, template)) return api.check(method, template, status, body);
      if (template.startsWith("/enterprises/")) {
        const ghec = validatorFor("ghec", operations);
        if (ghec.has(method, template)) return ghec.check(method, template, status, body);
      }
      return [`${method} ${template}: not an operation of GitHub's REST API`];
    },
  };
}

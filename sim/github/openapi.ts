// Validates responses against GitHub's OpenAPI description (@octokit/openapi),
// status code by status code: one ajv
// instance per spec file, `#/components/` refs rewritten to an $id, and
// `nullable` without `type` turned into `anyOf [..., null]`.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
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

  constructor(file: string, private readonly id: string) {
    this.spec = JSON.parse(readFileSync(fileURLToPath(new URL(file, import.meta.url)), "utf8")) as Spec;
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

/** Loads api.github.com.json now and ghec.json on the first enterprise path (each ~0.3 s). */
/** The descriptions and their compiled checks, read once per process: every fake GitHub of a test file shares them. */
let api: SpecValidator | undefined;
let ghec: SpecValidator | undefined;

export function loadResponseValidator(): ResponseValidator {
  api ??= new SpecValidator(SPEC_FILES.api, "gh");
  return {
    check(method, template, status, body) {
      if (status >= 500) return []; // outages: real, and never described by the spec
      if (api!.has(method, template)) return api!.check(method, template, status, body);
      if (template.startsWith("/enterprises/")) {
        ghec ??= new SpecValidator(SPEC_FILES.ghec, "ghec");
        if (ghec.has(method, template)) return ghec.check(method, template, status, body);
      }
      return [`${method} ${template}: not an operation of GitHub's REST API`];
    },
  };
}

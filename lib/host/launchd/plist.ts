// Reads a launchd plist into the keys this project writes and the simulated
// launchd honours, and checks a rendered agent against our rules.
import { isAbsolute } from "node:path";
import { parse, type PlistValue } from "plist";
import { z } from "../../core/schema/index.ts";
import { MacosRunnerError } from "../../core/errors.ts";
import { validate } from "../../core/schema/index.ts";
import { PULL_LABEL } from "./launchctl.ts";

export class PlistInvalidError extends MacosRunnerError {
  constructor(source: string, problem: string) {
    super(`launchd plist ${source}: ${problem}`, { kind: "config" });
  }
}

// Each message names its key: launchd's plists have no lines worth citing.
const text = (key: string) => z.string({ error: `${key} must be a <string>` });
const bool = (key: string) => z.boolean({ error: `${key} must be <true/> or <false/>` });
const seconds = (key: string) => {
  const error = `${key} must be a non-negative <integer> (seconds)`;
  return z.number({ error }).refine(Number.isSafeInteger, { error }).min(0, { error });
};
const ARGS = "ProgramArguments must be a non-empty <array> of <string>";
const KEEP_ALIVE = "KeepAlive must be a boolean or a <dict> with a boolean SuccessfulExit";
const ENV = "EnvironmentVariables must be a <dict> of <string> values";

const agentPlist = z.object(
  {
    Label: z.string({ error: (iss) => (iss.input === undefined ? "Label is required" : "Label must be a <string>") }).min(1, { error: "Label is required" }),
    UserName: text("UserName").optional(),
    ProgramArguments: z.array(z.string({ error: ARGS }), { error: ARGS }).min(1, { error: ARGS }),
    RunAtLoad: bool("RunAtLoad").optional(),
    KeepAlive: z.union([z.boolean(), z.object({ SuccessfulExit: z.boolean().optional() })], { error: KEEP_ALIVE }).optional(),
    StartInterval: seconds("StartInterval").optional(),
    ThrottleInterval: seconds("ThrottleInterval").optional(),
    ExitTimeOut: seconds("ExitTimeOut").optional(),
    AbandonProcessGroup: bool("AbandonProcessGroup").optional(),
    ProcessType: text("ProcessType").optional(),
    LimitLoadToSessionType: text("LimitLoadToSessionType").optional(),
    WorkingDirectory: text("WorkingDirectory").optional(),
    StandardOutPath: text("StandardOutPath").optional(),
    StandardErrorPath: text("StandardErrorPath").optional(),
    EnvironmentVariables: z.record(z.string(), z.string({ error: ENV }), { error: ENV }).optional(),
  },
  { error: "the top level must be a <dict>" },
);

export type AgentPlist = z.output<typeof agentPlist>;

/** Other keys are ignored. */
export function readAgentPlist(xml: string, source: string): AgentPlist {
  let root: PlistValue;
  try {
    root = parse(xml);
  } catch (err) {
    throw new PlistInvalidError(source, `not a valid XML property list (${(err as Error).message})`);
  }
  return checked(agentPlist, root, source);
}

// A plist is readable by anyone on the host: secrets stay in their 0600 files.
const SECRET_NAME = /TOKEN|SECRET|PASSW|PRIVATE|CREDENTIAL|JITCONFIG|(^|_)KEY$/i;

const required = (key: string) => ({ error: (iss: { input?: unknown }) => (iss.input === undefined ? `${key} is required` : undefined) });
const absolute = (what: string) => (iss: { input?: unknown }) =>
  `${what} must be an absolute path, got '${String(iss.input)}' (launchd does not expand ~ or relative paths)`;
const absolutePath = (key: string) => z.string(required(key)).refine(isAbsolute, { error: absolute(key) });

const renderedAgent = z.object({
  Label: z.string().regex(/^dev\.macos-runner\.(slot\.[12]|pull|selftest)$/, { error: (iss) => `unexpected Label '${String(iss.input)}'` }),
  ProgramArguments: z.array(z.string()).superRefine((args, ctx) => {
    if (!isAbsolute(args[0]!)) ctx.addIssue({ code: "custom", message: absolute("ProgramArguments[0]")({ input: args[0] }) });
    const at = args.indexOf("--config");
    if (at < 0 || at + 1 >= args.length) ctx.addIssue({ code: "custom", message: "ProgramArguments must pass --config PATH" });
    else if (!isAbsolute(args[at + 1]!)) ctx.addIssue({ code: "custom", message: absolute("the --config argument")({ input: args[at + 1] }) });
  }),
  WorkingDirectory: absolutePath("WorkingDirectory"),
  StandardOutPath: absolutePath("StandardOutPath"),
  StandardErrorPath: absolutePath("StandardErrorPath"),
  ExitTimeOut: z.number(required("ExitTimeOut")).min(1, { error: "ExitTimeOut 0 means wait forever; it must be bounded" }),
  ThrottleInterval: z.number(required("ThrottleInterval")),
  ProcessType: z.string(required("ProcessType")),
  LimitLoadToSessionType: z.literal("Aqua", { error: "LimitLoadToSessionType must be Aqua (VMs need the GUI session)" }).optional(),
  UserName: z.string().min(1).optional(),
  RunAtLoad: z.literal(true, { error: "RunAtLoad must be true" }),
  EnvironmentVariables: z
    .record(z.string(), z.string())
    .optional()
    .superRefine((env = {}, ctx) => {
      for (const name of Object.keys(env)) {
        if (SECRET_NAME.test(name)) {
          ctx.addIssue({ code: "custom", message: `EnvironmentVariables must not carry secrets, found '${name}'; put the secret in a 0600 file named by the config` });
        }
      }
      if (!env.PATH?.split(":").includes("/opt/homebrew/bin")) {
        ctx.addIssue({ code: "custom", message: "EnvironmentVariables.PATH must include /opt/homebrew/bin (where Homebrew puts tart)" });
      }
    }),
}).superRefine((p, ctx) => {
  if (p.Label === PULL_LABEL) {
    if (!p.UserName) ctx.addIssue({ code: "custom", message: "UserName is required (the pull daemon runs as the runner user, never as root)" });
    if (p.LimitLoadToSessionType !== undefined) ctx.addIssue({ code: "custom", message: "LimitLoadToSessionType must be absent (the pull daemon has no session)" });
  } else {
    if (p.LimitLoadToSessionType === undefined) ctx.addIssue({ code: "custom", message: "LimitLoadToSessionType must be Aqua (VMs need the GUI session)" });
    if (p.UserName !== undefined) ctx.addIssue({ code: "custom", message: "UserName must be absent (a slot agent runs as the user whose session loads it)" });
  }
});

/** Read back with the real parser. */
export function validateAgentPlist(xml: string, source: string): AgentPlist {
  const plist = readAgentPlist(xml, source);
  checked(renderedAgent, plist, source);
  return plist;
}

function checked<S extends z.ZodType>(schema: S, data: unknown, source: string): z.output<S> {
  const result = validate(schema, data);
  if (!result.ok) throw new PlistInvalidError(source, result.problems.map((p) => p.message).join("; "));
  return result.value;
}

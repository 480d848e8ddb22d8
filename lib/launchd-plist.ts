// Reads a launchd property list into the typed subset of keys this project
// writes and the simulated launchd honours, and checks a rendered agent
// against the rules every agent must follow (absolute paths, no secrets).
import { isAbsolute } from "node:path";
import { parse, type PlistValue } from "plist";
import { MacosRunnerError } from "./errors.ts";

export type KeepAlive = boolean | { SuccessfulExit?: boolean };

export interface AgentPlist {
  Label: string;
  ProgramArguments: string[];
  RunAtLoad?: boolean;
  KeepAlive?: KeepAlive;
  StartInterval?: number;
  ThrottleInterval?: number;
  ExitTimeOut?: number;
  AbandonProcessGroup?: boolean;
  ProcessType?: string;
  LimitLoadToSessionType?: string;
  WorkingDirectory?: string;
  StandardOutPath?: string;
  StandardErrorPath?: string;
  EnvironmentVariables?: Record<string, string>;
}

/** A plist that launchd would refuse, or that breaks one of our agent rules. */
export class PlistInvalidError extends MacosRunnerError {
  constructor(source: string, problem: string) {
    super(`launchd plist ${source}: ${problem}`, { kind: "config" });
  }
}

const STRING_KEYS = ["Label", "ProcessType", "LimitLoadToSessionType", "WorkingDirectory", "StandardOutPath", "StandardErrorPath"] as const;
const BOOL_KEYS = ["RunAtLoad", "AbandonProcessGroup"] as const;
const SECONDS_KEYS = ["StartInterval", "ThrottleInterval", "ExitTimeOut"] as const;

/** Parses plist XML and type-checks the keys we use; other keys are ignored. */
export function readAgentPlist(xml: string, source: string): AgentPlist {
  let root: PlistValue;
  try {
    root = parse(xml);
  } catch (err) {
    throw new PlistInvalidError(source, `not a valid XML property list (${(err as Error).message})`);
  }
  if (!isDict(root)) throw new PlistInvalidError(source, "the top level must be a <dict>");
  const out: Record<string, unknown> = {};
  for (const key of STRING_KEYS) {
    if (root[key] === undefined) continue;
    if (typeof root[key] !== "string") throw new PlistInvalidError(source, `${key} must be a <string>`);
    out[key] = root[key];
  }
  for (const key of BOOL_KEYS) {
    if (root[key] === undefined) continue;
    if (typeof root[key] !== "boolean") throw new PlistInvalidError(source, `${key} must be <true/> or <false/>`);
    out[key] = root[key];
  }
  for (const key of SECONDS_KEYS) {
    if (root[key] === undefined) continue;
    const v = root[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new PlistInvalidError(source, `${key} must be a non-negative <integer> (seconds)`);
    out[key] = v;
  }
  if (typeof out.Label !== "string" || out.Label === "") throw new PlistInvalidError(source, "Label is required");
  const args = root.ProgramArguments;
  if (!Array.isArray(args) || args.length === 0 || !args.every((a) => typeof a === "string")) {
    throw new PlistInvalidError(source, "ProgramArguments must be a non-empty <array> of <string>");
  }
  out.ProgramArguments = [...args];
  const keepAlive = root.KeepAlive;
  if (keepAlive !== undefined) {
    if (typeof keepAlive === "boolean") out.KeepAlive = keepAlive;
    else if (isDict(keepAlive) && (keepAlive.SuccessfulExit === undefined || typeof keepAlive.SuccessfulExit === "boolean")) {
      out.KeepAlive = keepAlive.SuccessfulExit === undefined ? {} : { SuccessfulExit: keepAlive.SuccessfulExit };
    } else throw new PlistInvalidError(source, "KeepAlive must be a boolean or a <dict> with a boolean SuccessfulExit");
  }
  const env = root.EnvironmentVariables;
  if (env !== undefined) {
    if (!isDict(env) || !Object.values(env).every((v) => typeof v === "string")) {
      throw new PlistInvalidError(source, "EnvironmentVariables must be a <dict> of <string> values");
    }
    out.EnvironmentVariables = { ...(env as Record<string, string>) };
  }
  return out as unknown as AgentPlist;
}

// Names that hold credentials. A plist is readable by anyone on the host, so
// secrets stay in their own 0600 files and only their paths go in the config.
const SECRET_NAME = /TOKEN|SECRET|PASSW|PRIVATE|CREDENTIAL|JITCONFIG|(^|_)KEY$/i;

const REQUIRED = ["WorkingDirectory", "StandardOutPath", "StandardErrorPath", "ExitTimeOut", "ThrottleInterval", "ProcessType"] as const;

/** Checks a plist rendered by `install` (read back with the real parser). */
export function validateAgentPlist(xml: string, source: string): AgentPlist {
  const p = readAgentPlist(xml, source);
  if (!/^dev\.macos-runner\.(slot\.[12]|pull)$/.test(p.Label)) throw new PlistInvalidError(source, `unexpected Label '${p.Label}'`);
  for (const key of REQUIRED) if (p[key] === undefined) throw new PlistInvalidError(source, `${key} is required`);
  if (p.LimitLoadToSessionType !== "Aqua") throw new PlistInvalidError(source, "LimitLoadToSessionType must be Aqua (VMs need the GUI session)");
  if (p.RunAtLoad !== true) throw new PlistInvalidError(source, "RunAtLoad must be true");
  const paths: [string, string][] = [
    ["ProgramArguments[0]", p.ProgramArguments[0]!],
    ["WorkingDirectory", p.WorkingDirectory!],
    ["StandardOutPath", p.StandardOutPath!],
    ["StandardErrorPath", p.StandardErrorPath!],
  ];
  const configAt = p.ProgramArguments.indexOf("--config");
  if (configAt < 0 || configAt + 1 >= p.ProgramArguments.length) throw new PlistInvalidError(source, "ProgramArguments must pass --config PATH");
  paths.push(["the --config argument", p.ProgramArguments[configAt + 1]!]);
  for (const [what, value] of paths) {
    if (!isAbsolute(value)) throw new PlistInvalidError(source, `${what} must be an absolute path, got '${value}' (launchd does not expand ~ or relative paths)`);
  }
  if (p.ExitTimeOut === 0) throw new PlistInvalidError(source, "ExitTimeOut 0 means wait forever; it must be bounded");
  for (const name of Object.keys(p.EnvironmentVariables ?? {})) {
    if (SECRET_NAME.test(name)) throw new PlistInvalidError(source, `EnvironmentVariables must not carry secrets, found '${name}'; put the secret in a 0600 file named by the config`);
  }
  if (!p.EnvironmentVariables?.PATH?.split(":").includes("/opt/homebrew/bin")) {
    throw new PlistInvalidError(source, "EnvironmentVariables.PATH must include /opt/homebrew/bin (where Homebrew puts tart)");
  }
  return p;
}

function isDict(v: PlistValue | undefined): v is { [k: string]: PlistValue } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof Uint8Array);
}

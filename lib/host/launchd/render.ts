// Renders the launchd jobs from the templates in launchd/.
import { build, parse, type PlistValue } from "plist";
import pullTemplate from "../../../launchd/pull.plist" with { type: "text" };
import selftestTemplate from "../../../launchd/selftest.plist" with { type: "text" };
import slotTemplate from "../../../launchd/slot.plist" with { type: "text" };
import { validateAgentPlist } from "./plist.ts";

/** After runner.job_timeout: a boot in progress, tart stop + delete and the runner DELETE. */
export const CLEANUP_MARGIN_S = 300;
const DEFAULT_PULL_INTERVAL_S = 300;

export interface AgentParams {
  /** Absolute; holds macos-runner and its command links. */
  binDir: string;
  configPath: string;
  slots: number;
  logDir: string;
  stateDir: string;
  jobTimeoutMs: number;
  pull: boolean;
  /** Required with `pull`. */
  user?: { name: string; home: string };
  pullIntervalS?: number;
}

export type RenderedAgent = ReturnType<typeof renderOne>;

export const slotExitTimeOut = (jobTimeoutMs: number): number => Math.ceil(jobTimeoutMs / 1000) + CLEANUP_MARGIN_S;

export function renderAgents(p: AgentParams): RenderedAgent[] {
  const common = { binDir: p.binDir.replace(/\/+$/, ""), configPath: p.configPath, logDir: p.logDir.replace(/\/+$/, ""), stateDir: p.stateDir };
  const agents = Array.from({ length: p.slots }, (_, i) => renderOne(slotTemplate, { ...common, slot: String(i + 1), exitTimeOut: slotExitTimeOut(p.jobTimeoutMs) }, i + 1));
  if (p.pull) {
    if (!p.user) throw new Error("renderAgents: the pull daemon needs the user it runs as");
    agents.push(renderOne(pullTemplate, { ...common, pullIntervalS: p.pullIntervalS ?? DEFAULT_PULL_INTERVAL_S, user: p.user.name, home: p.user.home }, undefined, "system"));
  }
  return agents;
}

/** Its environment is slot.plist's own, not a copy of it; `args` go to `selftest --in-agent` after the template's. */
export function renderSelftestAgent(p: { program: string; configPath: string; stateDir: string; reportPath: string; outPath: string; logPath: string; args: string[] }): RenderedAgent {
  const { args, ...values } = p;
  const slotEnv = (parse(slotTemplate) as Record<string, PlistValue>).EnvironmentVariables!;
  return renderOne(selftestTemplate, values, undefined, "gui", (filled) => {
    filled.ProgramArguments = [...(filled.ProgramArguments as string[]), ...args];
    filled.EnvironmentVariables = slotEnv;
  });
}

function renderOne(template: string, values: Record<string, string | number>, slot?: number, domain: "gui" | "system" = "gui", adjust?: (filled: Record<string, PlistValue>) => void) {
  const filled = fill(parse(template), values) as Record<string, PlistValue>;
  adjust?.(filled);
  const xml = build(filled);
  const label = filled.Label as string;
  const fileName = `${label}.plist`;
  return { label, domain, ...(slot !== undefined && { slot }), fileName, xml, plist: validateAgentPlist(xml, fileName) };
}

const PLACEHOLDER = /\{\{(\w+)\}\}/g;

// A string that is exactly one placeholder takes the value's own type (a number becomes an <integer>).
function fill(node: PlistValue, values: Record<string, string | number>): PlistValue {
  if (typeof node === "string") {
    const whole = /^\{\{(\w+)\}\}$/.exec(node);
    if (whole) return lookup(whole[1]!, values);
    return node.replace(PLACEHOLDER, (_, name: string) => String(lookup(name, values)));
  }
  if (Array.isArray(node)) return node.map((v) => fill(v, values));
  if (typeof node === "object" && node !== null && !(node instanceof Date) && !(node instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, fill(v, values)]));
  }
  return node;
}

function lookup(name: string, values: Record<string, string | number>): string | number {
  const v = values[name];
  if (v === undefined) throw new Error(`launchd template uses unknown placeholder {{${name}}}`);
  return v;
}

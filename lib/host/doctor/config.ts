// The config file loads and validates (every problem, with key path and line).
import { ConfigError } from "../../config/index.ts";
import { fail, pass, type Check } from "./types.ts";

export const configCheck = (loadError: unknown): Check => async (ctx) => {
  if (ctx.config) return [pass("config", `${ctx.config.file} is valid`)];
  const problems = loadError instanceof ConfigError && loadError.problems.length > 0
    ? loadError.problems.map((p) => `${p.line ? `line ${p.line}: ` : ""}${p.path ? `${p.path}: ` : ""}${p.message}`).join(" | ")
    : (loadError as Error).message;
  return [fail("config", problems, `fix ${ctx.configPath} (the problems name key and line)`)];
};

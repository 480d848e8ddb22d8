// The config file: one YAML file, read once per process; all its problems are
// reported together in one ConfigError.
import { closeSync, constants, fstatSync, openSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseYaml } from "../core/schema/index.ts";
import type { z } from "../core/schema/index.ts";
import { configSchema } from "./schema.ts";
import { ConfigError, expandPath, fileKind, Invalid } from "./values.ts";

export { ConfigError, parseDuration } from "./values.ts";

/** Defaults applied, paths absolute, durations in ms. */
export type Config = z.output<ReturnType<typeof configSchema>>;

export const ENV_VAR = "MACOS_RUNNER_CONFIG";
const DEFAULT_PATH = "~/.config/macos-runner/config.yml";

type PathSource = "flag" | "env" | "default";

export function resolveConfigPath(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return chooseConfigPath(flag, env).path;
}

export function loadConfig(opts: { path?: string | undefined; env?: NodeJS.ProcessEnv } = {}): Config {
  const env = opts.env ?? process.env;
  const { path, source } = chooseConfigPath(opts.path, env);
  return parseConfig(readConfigText(path, source), { file: path, env });
}

/** A FIFO or device is refused without a blocking read. */
function readConfigText(path: string, source: PathSource): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`config file ${path} ${code === "ENOENT" ? "not found" : `cannot be read (${(err as Error).message})`}; ${REMEDY[source]}`);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new ConfigError(`config file ${path} is ${fileKind(stats)}; ${REMEDY[source]}`);
    return readFileSync(fd, "utf8");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`config file ${path} cannot be read (${(err as Error).message}); ${REMEDY[source]}`);
  } finally {
    closeSync(fd);
  }
}

const REMEDY: Record<PathSource, string> = {
  flag: "the path came from --config; check it",
  env: `the path came from $${ENV_VAR}; fix it, or unset it to use ${DEFAULT_PATH}`,
  default: `that is the default path (neither --config nor $${ENV_VAR} is set); create the file there, or pass --config PATH or set ${ENV_VAR}`,
};

function chooseConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv): { path: string; source: PathSource } {
  const [raw, source]: [string, PathSource] = flag ? [flag, "flag"] : env[ENV_VAR] ? [env[ENV_VAR], "env"] : [DEFAULT_PATH, "default"];
  if (source === "default" && !env.HOME) {
    throw new ConfigError(`cannot locate the config file: HOME is not set, so the default ${DEFAULT_PATH} has no meaning; pass --config PATH or set ${ENV_VAR}`);
  }
  try {
    return { path: expandPath(raw, { home: env.HOME || undefined, dir: process.cwd() }), source };
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    throw new ConfigError(`cannot locate the config file: ${err.message}; ${REMEDY[source]}`);
  }
}

/** Relative paths resolve against `opts.file`'s directory. */
export function parseConfig(text: string, opts: { file: string; env?: NodeJS.ProcessEnv }): Config {
  const file = resolve(opts.file);
  const env = opts.env ?? process.env;
  const parsed = parseYaml(configSchema({ file, base: { home: env.HOME || undefined, dir: dirname(file) } }), text);
  if (!parsed.ok) throw ConfigError.forFile(file, parsed.problems);
  return parsed.value;
}

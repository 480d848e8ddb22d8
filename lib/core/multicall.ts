// The one executable that holds every command (busybox style). Run through a
// link named after a command it runs that command (`loop --slot 1`, the way
// launchd starts it); under its own name the command is the first argument
// (`macos-runner loop --slot 1`). A command's module is loaded only when it
// runs, so a step does not pay for the others' start-up.
import { basename } from "node:path";
import { reportFatal, runCli, type CommandSpec, type OptionSpec, type Parsed } from "./cli.ts";
import { exitCode, UsageError } from "./errors.ts";

export const MULTICALL_NAME = "macos-runner";

/** What every script in scripts/ exports. */
export interface CommandModule {
  spec: CommandSpec<Record<string, OptionSpec>>;
  main(args: Parsed<Record<string, OptionSpec>>): Promise<number | void>;
}

/** Command name -> its module, loaded on demand. tools/build.ts generates it (scripts/*.ts and retention). */
export type CommandTable = Record<string, () => Promise<CommandModule>>;

/**
 * Runs the command named by how the binary was invoked: `argv0` is the name
 * as exec'd (a link's own name; Bun keeps it in process.argv0, while
 * process.argv[0] is "bun" and process.execPath is the link's target).
 */
export async function dispatch(commands: CommandTable, argv0: string = process.argv0, args: string[] = process.argv.slice(2)): Promise<never> {
  const invoked = basename(argv0);
  const names = Object.keys(commands).sort();
  const known = (name: string | undefined): name is string => name !== undefined && Object.hasOwn(commands, name);
  try {
    if (known(invoked)) return await run(commands[invoked]!, args);
    if (invoked !== MULTICALL_NAME) {
      throw new UsageError(`invoked as '${invoked}', which is not a command (commands: ${names.join(", ")}); link a command's name to ${MULTICALL_NAME}, or run '${MULTICALL_NAME} COMMAND'`);
    }
    const [command, ...rest] = args;
    if (command === "--help" || command === "-h") {
      process.stdout.write(await overview(commands));
      process.exit(exitCode("ok"));
    }
    if (command === undefined) throw new UsageError(`no command given (commands: ${names.join(", ")})`);
    if (!known(command)) throw new UsageError(`unknown command '${command}' (commands: ${names.join(", ")})`);
    return await run(commands[command]!, rest);
  } catch (err) {
    process.exit(reportFatal(MULTICALL_NAME, err));
  }
}

async function run(load: () => Promise<CommandModule>, args: string[]): Promise<never> {
  const mod = await load();
  return runCli(mod.spec, (parsed) => mod.main(parsed), args);
}

/** `macos-runner --help`: every command with its summary (this one loads them all). */
async function overview(commands: CommandTable): Promise<string> {
  const names = Object.keys(commands).sort();
  const specs = await Promise.all(names.map(async (name) => (await commands[name]!()).spec));
  const width = Math.max(...names.map((n) => n.length));
  return [
    `${MULTICALL_NAME}: ephemeral macOS VMs for GitHub Actions; every command in one binary`,
    "",
    `Usage: ${MULTICALL_NAME} COMMAND [options]`,
    "       COMMAND [options]          (through a link named COMMAND to this binary)",
    "",
    "Commands:",
    ...specs.map((spec, i) => `  ${names[i]!.padEnd(width)}  ${spec.summary}`),
    "",
    `'${MULTICALL_NAME} COMMAND --help' shows a command's options and exit codes; an unknown command exits ${exitCode("usage")}.`,
    "",
  ].join("\n");
}

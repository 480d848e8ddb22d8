// Entry point of the simulated `tart` (contracts/tart.md). Each command lives
// in commands/<name>.ts and is imported only when called, so start-up stays
// lean (ssh2 is loaded by `run` alone).
import { RuntimeError, ValidationError } from "./errors.ts";
import { traceTart } from "./trace.ts";

export const VERSION = "2.33.0";

const COMMANDS = ["clone", "delete", "exec", "get", "ip", "list", "prune", "pull", "run", "set", "stop", "suspend"] as const;
type Command = (typeof COMMANDS)[number];

interface CommandModule {
  spec: { name: string; usage: string };
  run(argv: string[]): Promise<number | void>;
}

const HELP = `OVERVIEW: Simulated tart (macos-runner sim): a fake of cirruslabs/tart for tests.

USAGE: tart <subcommand>

OPTIONS:
  --version               Show the version.
  -h, --help              Show help information.

SUBCOMMANDS:
  ${COMMANDS.join("\n  ")}
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "--version") {
    console.log(VERSION);
    return 0;
  }
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  if (!(COMMANDS as readonly string[]).includes(command)) {
    process.stderr.write(`Error: Unexpected argument '${command}'\nUsage: tart <subcommand>\n  See 'tart --help' for more information.\n`);
    return 64;
  }
  const mod = (await import(`./commands/${command as Command}.ts`)) as CommandModule;
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(`USAGE: tart ${command} ${mod.spec.usage}`);
    return 0;
  }
  try {
    return (await mod.run(rest)) ?? 0;
  } catch (err) {
    if (err instanceof ValidationError) {
      process.stderr.write(`Error: ${err.message}\nUsage: tart ${command} ${mod.spec.usage}\n  See 'tart ${command} --help' for more information.\n`);
      return 64;
    }
    if (err instanceof RuntimeError) {
      process.stderr.write(`${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`Error: ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}

process.on("exit", traceTart);
process.exitCode = await main(process.argv.slice(2));

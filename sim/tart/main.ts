// Entry point of the simulated `tart` (contracts/tart.md). Each command lives
// in commands/<name>.ts and is imported only when called, so start-up stays
// lean (ssh2 is loaded by `run` alone); the imports are written out so that
// the compiled executable (compiled.ts) bundles every command.
import { RuntimeError, ValidationError } from "./errors.ts";
import { loadSettings } from "./settings.ts";
import { traceTart } from "./trace.ts";
import { GUEST_HELPER, WATCHDOG_HELPER } from "./compiled.ts";

interface CommandModule {
  spec: { name: string; usage: string };
  run(argv: string[]): Promise<number | void>;
}

const MODULES: Record<string, () => Promise<CommandModule>> = {
  clone: () => import("./commands/clone.ts"),
  delete: () => import("./commands/delete.ts"),
  exec: () => import("./commands/exec.ts"),
  get: () => import("./commands/get.ts"),
  ip: () => import("./commands/ip.ts"),
  list: () => import("./commands/list.ts"),
  prune: () => import("./commands/prune.ts"),
  pull: () => import("./commands/pull.ts"),
  run: () => import("./commands/run.ts"),
  set: () => import("./commands/set.ts"),
  stop: () => import("./commands/stop.ts"),
  suspend: () => import("./commands/suspend.ts"),
};
const COMMANDS = Object.keys(MODULES);

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
    try {
      console.log(loadSettings().version);
      return 0;
    } catch (err) {
      process.stderr.write(`Error: ${(err as Error).message}\n`);
      return 1;
    }
  }
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  const load = Object.hasOwn(MODULES, command) ? MODULES[command] : undefined;
  if (!load) {
    process.stderr.write(`Error: Unexpected argument '${command}'\nUsage: tart <subcommand>\n  See 'tart --help' for more information.\n`);
    return 64;
  }
  const mod = await load();
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

/** A running VM's two helper processes (vm/guest-process.ts), which the compiled tart runs from its own bundle. */
const HELPERS: Record<string, () => Promise<unknown>> = {
  [GUEST_HELPER]: () => import("./guest/main.ts"),
  [WATCHDOG_HELPER]: () => import("./guest/watchdog.ts"),
};

const helper = process.argv[2] === undefined ? undefined : HELPERS[process.argv[2]];
if (helper) {
  // Each reads its own arguments from process.argv.slice(2).
  process.argv.splice(2, 1);
  await helper();
} else {
  process.on("exit", traceTart);
  process.exitCode = await main(process.argv.slice(2));
}

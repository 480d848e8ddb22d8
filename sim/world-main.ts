// CLI: starts the simulated world, writes a config, prints what a human (or a
// script) needs to drive it as one JSON object, and runs until SIGINT/SIGTERM.
//   npx bun sim/world-main.ts [--registry optional|required] [--boot-ms N]
import { runCli } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";
import { startWorld } from "./world.ts";

await runCli(
  {
    name: "world",
    summary: "start the simulated world (sim/github, registry, fake tart) until interrupted",
    common: false,
    options: {
      registry: { type: "string", value: "MODE", description: "required (default) or optional: without docker-registry, use a local image" },
      "boot-ms": { type: "string", value: "N", description: "simulated VM boot time in milliseconds (default 500)" },
    },
  },
  async ({ values }) => {
    const registry = values.registry ?? "required";
    if (registry !== "required" && registry !== "optional") throw new UsageError(`world: --registry must be required or optional, got '${registry}'`);
    const bootMs = values["boot-ms"] === undefined ? undefined : Number(values["boot-ms"]);
    if (bootMs !== undefined && !(Number.isInteger(bootMs) && bootMs >= 0)) throw new UsageError(`world: --boot-ms must be a whole number of milliseconds, got '${values["boot-ms"]}'`);
    const world = await startWorld({ registry, tart: bootMs === undefined ? {} : { boot_ms: bootMs }, notice: (l) => console.error(l) });
    const config = world.writeConfig();
    console.log(
      JSON.stringify(
        { dir: world.dir, config, github: world.github.url, registry: world.registry?.url ?? null, imageRef: world.imageRef, env: world.env },
        null,
        2,
      ),
    );
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
    await world.stop();
  },
);

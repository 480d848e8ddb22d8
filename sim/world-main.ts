// CLI: starts the simulated world, writes a config, prints what a human (or a
// script) needs to drive it as one JSON object, and runs until SIGINT/SIGTERM.
//   npx bun sim/world-main.ts [--registry optional|required] [--profile fast|scaled|realistic] [--scale X] [--boot-ms N]
import { runCli } from "../lib/core/cli.ts";
import { UsageError } from "../lib/core/errors.ts";
import { startWorld } from "./world.ts";
import { PROFILE_NAMES, type ProfileName } from "./tart/profiles.ts";

await runCli(
  {
    name: "world",
    summary: "start the simulated world (sim/github, registry, fake tart) until interrupted",
    common: false,
    options: {
      registry: { type: "string", value: "MODE", description: "required (default) or optional: without docker-registry, use a local image" },
      profile: { type: "string", value: "NAME", description: "sim/tart timing profile: fast (default), scaled or realistic" },
      scale: { type: "string", value: "X", description: "multiplies every sim/tart time (default 1)" },
      "boot-ms": { type: "string", value: "N", description: "simulated time from tart run to the VM's lease, in milliseconds (default: the profile's)" },
    },
  },
  async ({ values }) => {
    const registry = values.registry ?? "required";
    if (registry !== "required" && registry !== "optional") throw new UsageError(`world: --registry must be required or optional, got '${registry}'`);
    const bootMs = values["boot-ms"] === undefined ? undefined : Number(values["boot-ms"]);
    if (bootMs !== undefined && !(Number.isInteger(bootMs) && bootMs >= 0)) throw new UsageError(`world: --boot-ms must be a whole number of milliseconds, got '${values["boot-ms"]}'`);
    const profile = values.profile ?? "fast";
    if (!(PROFILE_NAMES as readonly string[]).includes(profile)) throw new UsageError(`world: --profile must be one of ${PROFILE_NAMES.join(", ")}, got '${profile}'`);
    const scale = values.scale === undefined ? 1 : Number(values.scale);
    if (!(Number.isFinite(scale) && scale >= 0)) throw new UsageError(`world: --scale must be a number >= 0, got '${values.scale}'`);
    const tart = { profile: profile as ProfileName, scale, ...(bootMs === undefined ? {} : { boot_ms: bootMs }) };
    const world = await startWorld({ registry, tart, notice: (l) => console.error(l) });
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

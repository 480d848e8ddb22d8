// The tart contract (tart-contract.ts) held by TartCli over the compiled
// fake tart (sim/tart), with a real registry for pull and clone; real time.
import { join } from "node:path";
import { systemClock } from "../../lib/core/wait.ts";
import { TartCli } from "../../lib/vm/tart.ts";
import { SIM_BIN, startTartFixture } from "../../sim/image/fixture.ts";
import { placesFreed } from "../sim/helpers.ts";
import { CONTRACT_SETTINGS, tartContract } from "./tart-contract.ts";

tartContract("sim tart", async () => {
  const fx = await startTartFixture({ registry: true, settings: { ...CONTRACT_SETTINGS, ssh_ms: 50, ssh_port: 2222 } });
  const tart = new TartCli({
    path: join(SIM_BIN, "tart"),
    env: { TART_HOME: fx.tartHome, SIM_TART_CONFIG: fx.settingsPath },
    credentials: { TART_REGISTRY_USERNAME: fx.registry!.username, TART_REGISTRY_PASSWORD: fx.registry!.password },
    insecure: true,
  });
  return {
    tart,
    imageRef: fx.imageRef,
    dir: fx.dir,
    now: systemClock.now,
    sleep: (ms) => systemClock.sleep(ms),
    settle: (p) => p,
    configure: (patch) => fx.setTart(patch),
    // A SIGKILLed run's place is freed by its watchdog: slow on a loaded machine.
    placesFreed: () => placesFreed(fx, { running: true }, 15_000),
    stop: () => fx.stop(),
  };
});

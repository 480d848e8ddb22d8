// A ready-to-use simulated tart installation: a temp $TART_HOME, the
// SIM_TART_CONFIG file, a client SSH key + known_hosts for the guest, and the
// golden image either published to a real registry or installed as a local
// VM. Used by the tart tests and by sim/world.ts.
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startRegistry, type Registry } from "../registry.ts";
import { buildGoldenImage } from "./build.ts";
import { generateEd25519 } from "./keys.ts";
import { publishImage, type Published } from "./publish.ts";
import { patchSettings, resolveSettings, type SimTartConfig, type SimTartPatch, type SimTartSettings } from "../tart/settings.ts";
import { runState } from "../tart/running.ts";
import { POWER_MARKER } from "../tart/guest/env.ts";
import { killMarked } from "../tart/guest/processes.ts";
import { GUEST_USER, userHome } from "../tart/guest/fs.ts";
import { ensureCompiledTart } from "../tart/compiled.ts";
import { ensureCompiledLaunchctl } from "../compiled.ts";

export const SIM_BIN = resolve(import.meta.dir, "..", "bin");
export const HOST_KEY_ALIAS = "macos-runner-guest";
export const IMAGE_REPOSITORY = "macos-runner";
export const IMAGE_TAG = "sonoma";
export const LOCAL_IMAGE_NAME = "macos-runner-sonoma";

export interface TartFixtureOptions {
  /** Publish to a real registry (started here), or install the image as a local VM. */
  registry: boolean;
  /** SIM_TART_CONFIG content: a profile, a scale, explicit times, faults… */
  settings?: SimTartConfig;
  actionsRunnerDir?: string;
  /** Parent of the temp dir. */
  parent?: string;
  /** The docker-registry binary (default /usr/bin/docker-registry). */
  registryBinary?: string | undefined;
}

/** A golden image version: `marker` lands in the guest user's home as IMAGE_MARKER. */
export interface ImageVersion {
  marker: string;
  /** Becomes the dev.macos-runner.runner-version label. */
  runnerVersion?: string;
  /** Default: the fixture's tag. */
  tag?: string;
}

/** The file, in the guest user's home, that only a published ImageVersion has. */
export const IMAGE_MARKER = "image-version";
export const RUNNER_VERSION_LABEL = "dev.macos-runner.runner-version";

export interface TartResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TartFixture {
  dir: string;
  tartHome: string;
  settingsPath: string;
  /** PATH with sim/bin first, TART_HOME, SIM_TART_CONFIG, TART_REGISTRY_* (with a registry), CI=true. */
  env: Record<string, string>;
  /** The compiled fake tart itself: a tart call without sim/bin's shell shim. */
  tartPath: string;
  sshKeyPath: string;
  knownHostsPath: string;
  hostPublicKey: string;
  /** The golden image VM directory (as built, before publishing). */
  goldenDir: string;
  registry?: Registry | undefined;
  imageRef: string;
  /** The settings in force (profile and scale applied). */
  settings(): SimTartSettings;
  /** Merges into SIM_TART_CONFIG; a key set to undefined falls back to the profile. */
  setTart(patch: SimTartPatch): void;
  /** Runs the simulated tart synchronously. */
  tart(...args: string[]): TartResult;
  /** Publishes the golden image (optionally changed first) again under the tag: a bumped tag. */
  republish(change?: (goldenDir: string) => void): Promise<string>;
  /** Publishes a version of the golden image under the tag, leaving the golden image as it is. */
  publishVersion(v: ImageVersion): Promise<Published>;
  stop(): Promise<void>;
}

export async function startTartFixture(opts: TartFixtureOptions): Promise<TartFixture> {
  // What sim/bin (on the fixture's PATH) runs, fresh.
  const tartPath = ensureCompiledTart();
  ensureCompiledLaunchctl();
  const dir = mkdtempSync(join(opts.parent ?? tmpdir(), "sim-tart-"));
  let registry: Registry | undefined;
  try {
    const tartHome = join(dir, "tart");
    const settingsPath = join(dir, "sim-tart.json");
    const sshKeyPath = join(dir, "ssh", "id_ed25519");
    const knownHostsPath = join(dir, "ssh", "known_hosts");
    const clientPublic = generateEd25519(sshKeyPath, "macos-runner-host");
    chmodSync(sshKeyPath, 0o600);
    const goldenDir = join(dir, "golden");
    const { hostPublicKey } = await buildGoldenImage(goldenDir, { authorizedKeys: clientPublic, actionsRunnerDir: opts.actionsRunnerDir });
    writeFileSync(knownHostsPath, `${HOST_KEY_ALIAS} ${hostPublicKey.split(" ").slice(0, 2).join(" ")}\n`);

    let current: SimTartConfig = { ...opts.settings, rev: 0 };
    resolveSettings(current);
    const writeSettings = () => writeFileSync(settingsPath, JSON.stringify(current, null, 2));
    writeSettings();

    const env: Record<string, string> = {
      PATH: `${SIM_BIN}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      TART_HOME: tartHome,
      SIM_TART_CONFIG: settingsPath,
      CI: "true",
    };
    let imageRef = LOCAL_IMAGE_NAME;
    const publishFrom = (vmDir: string, tag = IMAGE_TAG, labels?: Record<string, string>) => {
      const ref = `${registry!.url}/${IMAGE_REPOSITORY}:${tag}`;
      return publishImage(vmDir, ref, { insecure: true, username: registry!.username, password: registry!.password, labels });
    };
    const publish = async () => (await publishFrom(goldenDir)).pinned;
    if (opts.registry) {
      registry = await startRegistry({ dir: join(dir, "registry"), binary: opts.registryBinary });
      Object.assign(env, { TART_REGISTRY_USERNAME: registry.username, TART_REGISTRY_PASSWORD: registry.password });
      imageRef = `${registry.url}/${IMAGE_REPOSITORY}:${IMAGE_TAG}`;
      await publish();
    } else {
      cpSync(goldenDir, join(tartHome, "vms", LOCAL_IMAGE_NAME), { recursive: true });
    }

    let stopped: Promise<void> | undefined;
    const fixture: TartFixture = {
      dir,
      tartHome,
      settingsPath,
      env,
      tartPath,
      sshKeyPath,
      knownHostsPath,
      hostPublicKey,
      goldenDir,
      registry,
      imageRef,
      settings: () => resolveSettings(current),
      setTart(patch) {
        current = patchSettings(current, patch);
        writeSettings();
      },
      tart(...args) {
        const r = spawnSync(tartPath, args, { env: { ...process.env, ...env }, encoding: "utf8", timeout: 120_000 });
        return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
      },
      async republish(change) {
        change?.(goldenDir);
        if (!registry) throw new Error("republish needs the fixture's registry");
        return await publish();
      },
      async publishVersion(v) {
        if (!registry) throw new Error("publishVersion needs the fixture's registry");
        const copy = mkdtempSync(join(dir, "version-"));
        try {
          cpSync(goldenDir, copy, { recursive: true });
          writeFileSync(join(userHome(join(copy, "disk.img"), GUEST_USER), IMAGE_MARKER), `${v.marker}\n`);
          return await publishFrom(copy, v.tag, v.runnerVersion ? { [RUNNER_VERSION_LABEL]: v.runnerVersion } : undefined);
        } finally {
          rmSync(copy, { recursive: true, force: true });
        }
      },
      stop: () => (stopped ??= (async () => {
        killVMs(tartHome);
        await registry?.stop();
        rmSync(dir, { recursive: true, force: true });
      })()),
    };
    return fixture;
  } catch (err) {
    await registry?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * SIGKILLs every `tart run` under a TART_HOME, its VMs' power watchdogs, and
 * every guest process, frozen ones of VMs already gone included.
 */
export function killVMs(tartHome: string): void {
  const vms = join(tartHome, "vms");
  if (existsSync(vms)) {
    for (const name of readdirSync(vms)) {
      const state = runState(join(vms, name));
      if (!state) continue;
      try {
        process.kill(state.pid, "SIGKILL");
      } catch {}
    }
  }
  const ours = (vmDir: string) => vmDir.startsWith(`${vms}/`);
  killMarked(ours, POWER_MARKER);
  killMarked(ours);
  // A `tart run` started just before this (by a loop leaving its next VM) may not have marked
  // its VM yet; it, and a wrapper around it, still carry this tart home in their environment.
  killMarked((home) => home === tartHome, "TART_HOME");
}

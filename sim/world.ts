// The simulated world in one call: sim/github, the real registry with the
// golden image published (or, in the demo without docker-registry, the image
// as a local VM), a $TART_HOME for the fake tart, the secret files, and a
// macos-runner config pointing at all of it. stop() leaves nothing behind.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { startGitHub, type GitHubSim, type GitHubSimOptions } from "./github/server.ts";
import { GitHubSimClient } from "./github/client.ts";
import { killVMs, LOCAL_IMAGE_NAME, startTartFixture, type ImageVersion, type TartFixture } from "./image/fixture.ts";
import type { Published } from "./image/publish.ts";
import { REGISTRY_BINARY, registryInstalled } from "./registry.ts";
import { patchSettings, type SimTartConfig, type SimTartPatch, type SimTartSettings } from "./tart/settings.ts";

export type { SimTartConfig, SimTartPatch, SimTartSettings, Fault, FaultKind } from "./tart/settings.ts";

export const REGISTRY_MISSING_NOTICE = "notice: docker-registry not installed; serving the golden image as a local VM instead";

export interface WorldOptions {
  /** "required" (tests): a missing docker-registry is an error. "optional" (demo): fall back to a local image. */
  registry?: "required" | "optional";
  /** Initial sim/tart settings: profile, scale, explicit times, faults (default: the fast profile, SSH on port 2222). */
  tart?: SimTartConfig;
  github?: GitHubSimOptions;
  /** Org the runners register in (default "acme"). */
  org?: string;
  /** Where the notice goes when the registry is missing (default stdout). */
  notice?: (line: string) => void;
  /** For tests of the fallback: the registry binary to look for. */
  registryBinary?: string;
}

export interface World {
  /** Temp root; removed by stop(). */
  dir: string;
  /** For child processes: PATH with sim/bin first, TART_HOME, SIM_TART_CONFIG, TART_REGISTRY_*, CI=true. */
  env: Record<string, string>;
  github: GitHubSim;
  gh: GitHubSimClient;
  registry?: { url: string; username: string; password: string } | undefined;
  /** "127.0.0.1:PORT/macos-runner:sonoma" or a local VM name. */
  imageRef: string;
  tartHome: string;
  sshKeyPath: string;
  /** known_hosts with `macos-runner-guest ssh-ed25519 AAAA…` (use -o HostKeyAlias=macos-runner-guest). */
  knownHostsPath: string;
  appKeyPath: string;
  patPath: string;
  registryPasswordPath?: string | undefined;
  /** The sim/tart settings in force (profile and scale applied). */
  tartSettings(): SimTartSettings;
  /** Rewrites the SIM_TART_CONFIG file (merged into the current config; undefined drops a key). */
  setTart(patch: SimTartPatch): void;
  /** Pushes a new version of the golden image (marker file, runner-version label) to the registry under the tag. */
  publishVersion(v: ImageVersion): Promise<Published>;
  /** Writes a macos-runner config YAML, deep-merged with overrides (null deletes a key); returns its path. */
  writeConfig(overrides?: Record<string, unknown>, name?: string): string;
  /**
   * Another Mac in the same fleet: its own TART_HOME (its own two VM places,
   * lease file and tart settings), sharing this world's GitHub, registry and
   * golden image. Stopped with the world.
   */
  addHost(name: string, tart?: SimTartConfig): SimHost;
  stop(): Promise<void>;
}

export interface SimHost {
  tartHome: string;
  /** For this host's processes: the world's env with this host's TART_HOME and SIM_TART_CONFIG. */
  env: Record<string, string>;
  /** The host's bootpd lease file (host.dhcp_leases_path). */
  leasesPath: string;
  /** Merges into this host's tart settings. */
  setTart(patch: SimTartPatch): void;
}

export type Tree = Record<string, unknown>;

/** Deep merge: objects merge key by key, null deletes, anything else replaces. */
export function deepMerge(base: Tree, overrides: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === null) delete out[key];
    else if (isTree(value) && isTree(out[key])) out[key] = deepMerge(out[key] as Tree, value);
    else out[key] = value;
  }
  return out;
}

const isTree = (v: unknown): v is Tree => typeof v === "object" && v !== null && !Array.isArray(v);

function writeSecret(path: string, content: string): string {
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

export async function startWorld(opts: WorldOptions = {}): Promise<World> {
  const mode = opts.registry ?? "required";
  const useRegistry = mode === "required" || registryInstalled(opts.registryBinary ?? REGISTRY_BINARY);
  if (!useRegistry) (opts.notice ?? ((l) => console.log(l)))(REGISTRY_MISSING_NOTICE);

  const github = await startGitHub(opts.github);
  let fixture: TartFixture | undefined;
  try {
    fixture = await startTartFixture({ registry: useRegistry, settings: { ssh_port: 2222, ...opts.tart }, registryBinary: opts.registryBinary });
  } catch (err) {
    await github.stop();
    throw err;
  }
  const fx = fixture;
  const dir = fx.dir;
  const secrets = join(dir, "secrets");
  mkdirSync(secrets, { mode: 0o700 });
  const appKeyPath = writeSecret(join(secrets, "app.pem"), github.app.privateKeyPem);
  const patPath = writeSecret(join(secrets, "pat"), `${github.pat}\n`);
  const registryPasswordPath = fx.registry ? writeSecret(join(secrets, "registry-password"), `${fx.registry.password}\n`) : undefined;
  const org = opts.org ?? "acme";
  const installation = github.app.installations.find((i) => i.account.toLowerCase() === org.toLowerCase());

  const baseConfig = (): Tree => ({
    github: {
      url: `${github.url}/${org}`,
      api_url: github.url,
      app: { id: github.app.id, ...(installation ? { installation_id: installation.id } : {}), private_key_path: appKeyPath },
    },
    runner: { name_prefix: "sim", labels: ["self-hosted", "macOS", "ARM64"] },
    image: {
      ref: fx.imageRef,
      insecure: true,
      ...(fx.registry ? { username: fx.registry.username, password_path: registryPasswordPath } : {}),
    },
    vm: {
      ssh: { user: "admin", port: fx.settings().ssh_port, private_key_path: fx.sshKeyPath, known_hosts_path: fx.knownHostsPath },
    },
    host: {
      slots: 2,
      tart_path: fx.tartPath,
      state_dir: join(dir, "state"),
      log_dir: join(dir, "logs"),
      // The sim's bootpd lease file, read directly as /var/db/dhcpd_leases is on a Mac.
      dhcp_leases_path: fx.settings().leases_file ?? join(fx.tartHome, "sim", "dhcpd_leases"),
    },
  });

  const hosts: string[] = [];
  const addHost = (name: string, tart: SimTartConfig = {}): SimHost => {
    const root = join(dir, "hosts", name);
    const tartHome = join(root, "tart");
    const settingsPath = join(root, "sim-tart.json");
    mkdirSync(tartHome, { recursive: true });
    // Without a registry the golden image is a local VM, so each host gets its own copy.
    if (!fx.registry) cpSync(fx.goldenDir, join(tartHome, "vms", LOCAL_IMAGE_NAME), { recursive: true });
    // Each host has its own lease file (under its TART_HOME), not the first host's.
    const { leases_file: _, ...shared } = JSON.parse(readFileSync(fx.settingsPath, "utf8")) as SimTartConfig;
    let current: SimTartConfig = { ...shared, ...tart, rev: 0 };
    const write = () => writeFileSync(settingsPath, JSON.stringify(current, null, 2));
    write();
    hosts.push(tartHome);
    return {
      tartHome,
      env: { ...fx.env, TART_HOME: tartHome, SIM_TART_CONFIG: settingsPath },
      leasesPath: join(tartHome, "sim", "dhcpd_leases"),
      setTart(patch) {
        current = patchSettings(current, patch);
        write();
      },
    };
  };

  let stopped: Promise<void> | undefined;
  const emergencyStop = () => {
    // process exit: only synchronous work runs; the registry's stop() sends
    // its SIGTERM synchronously.
    for (const home of hosts) killVMs(home);
    killVMs(fx.tartHome);
    void fx.registry?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", emergencyStop);

  return {
    dir,
    env: fx.env,
    github,
    gh: new GitHubSimClient(github.url),
    registry: fx.registry && { url: fx.registry.url, username: fx.registry.username, password: fx.registry.password },
    imageRef: fx.imageRef,
    tartHome: fx.tartHome,
    sshKeyPath: fx.sshKeyPath,
    knownHostsPath: fx.knownHostsPath,
    appKeyPath,
    patPath,
    registryPasswordPath,
    tartSettings: () => fx.settings(),
    setTart: (settings) => fx.setTart(settings),
    publishVersion: (v) => fx.publishVersion(v),
    writeConfig(overrides = {}, name = "config.yml") {
      const path = join(dir, name);
      writeFileSync(path, stringify(deepMerge(baseConfig(), overrides)));
      return path;
    },
    addHost,
    stop: () =>
      (stopped ??= (async () => {
        process.off("exit", emergencyStop);
        for (const home of hosts) killVMs(home);
        await Promise.all([fx.stop(), github.stop()]);
      })()),
  };
}

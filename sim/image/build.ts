// The simulated golden image: a tart VM directory whose disk.img is the
// guest's filesystem: the admin user's home with ~/actions-runner (the fake
// runner) and ~/.ssh/authorized_keys, and the SSH host key in etc/ssh/.
import { chmodSync, cpSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { authorizedKeysPath, GUEST_USER, hostKeyPath, userHome } from "../tart/guest/fs.ts";
import { randomMAC, type VMConfig } from "../tart/home.ts";
import { generateEd25519 } from "./keys.ts";

export const ACTIONS_RUNNER_SOURCE = join(import.meta.dir, "..", "guest", "actions-runner");

export interface GoldenImageOptions {
  /** authorized_keys content for the guest user (one or more public key lines). */
  authorizedKeys: string;
  /** Defaults to sim/guest/actions-runner. */
  actionsRunnerDir?: string | undefined;
  diskSizeGB?: number;
  cpuCount?: number;
  memoryMB?: number;
}

export interface GoldenImage {
  dir: string;
  /** The guest's host key, `ssh-ed25519 AAAA… comment`. */
  hostPublicKey: string;
}

export async function buildGoldenImage(dir: string, opts: GoldenImageOptions): Promise<GoldenImage> {
  const runnerSource = opts.actionsRunnerDir ?? ACTIONS_RUNNER_SOURCE;
  if (!existsSync(join(runnerSource, "run.sh"))) {
    throw new Error(`the fake actions runner is missing: ${join(runnerSource, "run.sh")} does not exist`);
  }
  const root = join(dir, "disk.img");
  const home = userHome(root, GUEST_USER);
  mkdirSync(home, { recursive: true });
  cpSync(runnerSource, join(home, "actions-runner"), { recursive: true });

  const authorized = authorizedKeysPath(root, GUEST_USER);
  mkdirSync(join(home, ".ssh"), { recursive: true, mode: 0o700 });
  writeFileSync(authorized, `${opts.authorizedKeys.trim()}\n`, { mode: 0o600 });
  chmodSync(authorized, 0o600);
  const hostPublicKey = generateEd25519(hostKeyPath(root), "root@macos-runner-guest");

  const memory = (opts.memoryMB ?? 8192) * 1024 * 1024;
  const cpus = opts.cpuCount ?? 4;
  const config: VMConfig = {
    version: 1,
    os: "darwin",
    arch: "arm64",
    cpuCountMin: 4,
    cpuCount: cpus,
    memorySizeMin: 8192 * 1024 * 1024,
    memorySize: memory,
    macAddress: randomMAC(),
    display: { width: 1024, height: 768 },
    diskFormat: "raw",
    ecid: randomBytes(8).toString("base64"),
    hardwareModel: Buffer.from("sim-VirtualMac2,1").toString("base64"),
    simDiskSize: (opts.diskSizeGB ?? 50) * 1e9,
  };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  writeFileSync(join(dir, "nvram.bin"), randomBytes(4096));
  return { dir, hostPublicKey };
}

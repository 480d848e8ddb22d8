// `tart pull` and the implicit pull of `clone` (VMStorageOCI.pull): fetch the
// manifest, reuse a cached digest, else download config, disk and NVRAM
// layers (digest-checked) into a temp dir, move it in and link the tag.
import { createHash, randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { sleep, tmpDir } from "./home.ts";
import { TartError } from "./errors.ts";
import { cachePath, formatRemoteName, gcCache, isDigest, isLinked, type RemoteName } from "./oci.ts";
import { OCI_MANIFEST, RegistryClient } from "./registry-client.ts";
import { loadSettings } from "./settings.ts";

export const MEDIA = {
  config: "application/vnd.cirruslabs.tart.config.v1",
  disk: "application/vnd.cirruslabs.tart.disk.v2",
  diskV1: "application/vnd.cirruslabs.tart.disk.v1",
  nvram: "application/vnd.cirruslabs.tart.nvram.v1",
} as const;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

interface Manifest {
  mediaType?: string;
  layers: Descriptor[];
}

const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

function parseManifest(raw: Buffer): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(raw.toString("utf8"));
  } catch (err) {
    throw new TartError(`failed to decode the manifest: ${(err as Error).message}`);
  }
  if (m.mediaType && m.mediaType !== OCI_MANIFEST) throw new TartError(`unsupported manifest media type ${m.mediaType}`);
  if (m.layers?.some((l) => l.mediaType === MEDIA.diskV1)) {
    throw new TartError("OCIError: the image uses the legacy disk format (v1), which is no longer supported");
  }
  for (const kind of [MEDIA.config, MEDIA.disk, MEDIA.nvram]) {
    if (!m.layers?.some((l) => l.mediaType === kind)) throw new TartError(`OCIError: the manifest has no ${kind} layer`);
  }
  return m;
}

function link(tag: RemoteName, digestDir: string): void {
  const path = cachePath(tag);
  // Link beside, then rename over: atomic, so concurrent pulls cannot collide.
  const tmp = `${path}.${process.pid}.link`;
  rmSync(tmp, { force: true });
  symlinkSync(basename(digestDir), tmp);
  renameSync(tmp, path);
}

export interface PullOptions {
  insecure: boolean;
  concurrency: number;
}

/** Pulls `name` into the cache; returns the digest directory. */
export async function pullImage(name: RemoteName, opts: PullOptions): Promise<string> {
  console.log("pulling manifest...");
  const registry = new RegistryClient(name.host, name.namespace, opts.insecure);
  const raw = await registry.pullManifest(name.reference);
  const digest = sha256(raw);
  const digestName: RemoteName = { ...name, reference: digest };
  const digestDir = cachePath(digestName);
  const byDigest = isDigest(name.reference);

  if (existsSync(digestDir) && (byDigest || isLinked(name, digestDir))) {
    console.log(`${formatRemoteName(digestName)} image is already cached and linked!`);
    return digestDir;
  }
  if (existsSync(digestDir)) {
    console.log(`${formatRemoteName(digestName)} image is already cached! creating a symlink...`);
  } else {
    await download(registry, parseManifest(raw), raw, digestDir, opts.concurrency);
    if (byDigest) writeFileSync(join(digestDir, ".explicitly-pulled"), "");
  }
  if (!byDigest) link(name, digestDir);
  gcCache();
  return digestDir;
}

async function fetchChecked(registry: RegistryClient, d: Descriptor): Promise<Buffer> {
  const blob = await registry.pullBlob(d.digest);
  if (sha256(blob) !== d.digest) throw new TartError(`OCIError: blob ${d.digest} failed digest verification (got ${sha256(blob)})`);
  const { pull_ms } = loadSettings();
  if (pull_ms > 0) await sleep(pull_ms);
  return blob;
}

async function download(registry: RegistryClient, manifest: Manifest, raw: Buffer, digestDir: string, concurrency: number) {
  const tmp = join(tmpDir(), `pull-${randomBytes(6).toString("hex")}`);
  mkdirSync(join(tmp, "disk.img"), { recursive: true });
  try {
    const config = manifest.layers.find((l) => l.mediaType === MEDIA.config)!;
    writeFileSync(join(tmp, "config.json"), await fetchChecked(registry, config));

    const disks = manifest.layers.filter((l) => l.mediaType === MEDIA.disk);
    const compressed = disks.reduce((n, l) => n + l.size, 0);
    console.log(`pulling disk (${(compressed / 1e9).toFixed(1)} GB compressed)...`);
    console.log("0%");
    const parts: Buffer[] = new Array(disks.length);
    // The workers share one queue: each takes the next disk part until none is left.
    const queue = [...disks.entries()];
    let done = 0;
    let lastPercent = 0;
    const worker = async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const [i, disk] = item;
        parts[i] = await fetchChecked(registry, disk);
        done += disk.size;
        const percent = compressed ? Math.floor((done * 100) / compressed) : 100;
        if (percent > lastPercent && percent < 100) console.log(`${(lastPercent = percent)}%`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, disks.length) }, worker));
    untar(Buffer.concat(parts), join(tmp, "disk.img"));
    console.log("100%");

    console.log("pulling NVRAM...");
    const nvram = manifest.layers.find((l) => l.mediaType === MEDIA.nvram)!;
    writeFileSync(join(tmp, "nvram.bin"), await fetchChecked(registry, nvram));
    writeFileSync(join(tmp, "manifest.json"), raw);
    mkdirSync(join(digestDir, ".."), { recursive: true });
    // A concurrent pull of the same digest may have finished first (real tart
    // serialises these with a lock on TART_HOME); its copy is as good as ours.
    if (!existsSync(digestDir)) renameSync(tmp, digestDir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The sim's disk layers are slices of one tar of the guest tree. */
function untar(tar: Buffer, dir: string): void {
  const r = spawnSync("tar", ["-xf", "-", "-C", dir], { input: tar, stdio: ["pipe", "ignore", "pipe"] });
  if (r.status !== 0) throw new TartError(`failed to unpack the disk: ${r.stderr?.toString().trim() || r.error?.message}`);
}


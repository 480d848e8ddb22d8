// Pushes a sim VM directory to an OCI registry the way `tart push` does
// (§4): config, disk (v2) and NVRAM layers as blobs (HEAD, then POST +
// monolithic PUT), then a compact sorted-keys manifest with tart's
// annotations. The disk is a tar of the guest tree, sliced at 512 MiB.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { formatRemoteName, requireRemoteName } from "../tart/oci.ts";
import { MEDIA } from "../tart/pull.ts";
import { OCI_MANIFEST } from "../tart/registry-client.ts";

const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const SLICE = 512 * 1024 * 1024;

export interface PublishOptions {
  insecure?: boolean;
  username?: string;
  password?: string;
  /** Labels in the OCI config, as `tart push --label k=v` writes them. */
  labels?: Record<string, string> | undefined;
}

export interface Published {
  /** sha256 of the manifest bytes. */
  digest: string;
  /** host:port/ns@sha256:… */
  pinned: string;
}

export class PublishFailed extends Error {
  constructor(what: string, res: Response, body: string) {
    super(`publishing image: ${what} answered ${res.status}: ${body.slice(0, 300)}`);
    this.name = "PublishFailed";
  }
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** JSON with object keys sorted at every level and no whitespace (tart's manifest encoding). */
export function sortedJSON(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJSON).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${JSON.stringify(k)}:${sortedJSON(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export async function publishImage(vmDir: string, ref: string, opts: PublishOptions = {}): Promise<Published> {
  const name = requireRemoteName(ref);
  const base = `${opts.insecure ? "http" : "https"}://${name.host}`;
  const auth: Record<string, string> = opts.username
    ? { Authorization: `Basic ${Buffer.from(`${opts.username}:${opts.password ?? ""}`).toString("base64")}` }
    : {};
  const call = (url: string, init: RequestInit = {}) =>
    fetch(url.startsWith("http") ? url : `${base}${url}`, {
      ...init,
      headers: { ...auth, ...(init.headers as Record<string, string>) },
      signal: AbortSignal.timeout(60_000),
    });

  const pushBlob = async (data: Buffer, mediaType: string, annotations?: Record<string, string>): Promise<Descriptor> => {
    const digest = sha256(data);
    const head = await call(`/v2/${name.namespace}/blobs/${digest}`, { method: "HEAD" });
    if (head.status !== 200) {
      const start = await call(`/v2/${name.namespace}/blobs/uploads/`, { method: "POST" });
      if (start.status !== 202) throw new PublishFailed("POST blobs/uploads/", start, await start.text());
      await start.body?.cancel();
      const location = new URL(start.headers.get("location")!, base);
      location.searchParams.set("digest", digest);
      const put = await call(location.toString(), { method: "PUT", body: data, headers: { "Content-Type": "application/octet-stream" } });
      if (put.status !== 201) throw new PublishFailed(`PUT blob ${digest}`, put, await put.text());
      await put.body?.cancel();
    }
    return { mediaType, digest, size: data.length, ...(annotations ? { annotations } : {}) };
  };

  const configJSON = readFileSync(join(vmDir, "config.json"));
  const disk = execFileSync("tar", ["-cf", "-", "-C", join(vmDir, "disk.img"), "."], { maxBuffer: 1 << 30 });
  const nvram = readFileSync(join(vmDir, "nvram.bin"));

  const ociConfig = await pushBlob(
    Buffer.from(sortedJSON({ architecture: "arm64", config: { Labels: { ...opts.labels, "org.cirruslabs.tart.disk.format": "raw" } }, os: "darwin" })),
    OCI_CONFIG,
  );
  const layers: Descriptor[] = [await pushBlob(configJSON, MEDIA.config)];
  for (let offset = 0; offset === 0 || offset < disk.length; offset += SLICE) {
    const slice = disk.subarray(offset, offset + SLICE);
    layers.push(
      await pushBlob(slice, MEDIA.disk, {
        "org.cirruslabs.tart.uncompressed-content-digest": sha256(slice),
        "org.cirruslabs.tart.uncompressed-size": String(slice.length),
      }),
    );
  }
  layers.push(await pushBlob(nvram, MEDIA.nvram));

  const manifest = Buffer.from(
    sortedJSON({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: ociConfig,
      layers,
      annotations: {
        "org.cirruslabs.tart.uncompressed-disk-size": String(disk.length),
        "org.cirruslabs.tart.upload-time": new Date().toISOString(),
      },
    }),
  );
  const put = await call(`/v2/${name.namespace}/manifests/${name.reference}`, {
    method: "PUT",
    body: manifest,
    headers: { "Content-Type": OCI_MANIFEST },
  });
  if (put.status !== 201) throw new PublishFailed(`PUT manifest ${name.reference}`, put, await put.text());
  await put.body?.cancel();
  const digest = sha256(manifest);
  return { digest, pinned: formatRemoteName({ ...name, reference: digest }) };
}

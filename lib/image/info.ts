// What the registry says about a golden image without pulling it: its disk
// size (tart's manifest annotation), upload time, and the labels `tart push
// --label` put in its OCI config, among them the actions runner version.
import type { RegistryClient } from "./registry.ts";

export const RUNNER_VERSION_LABEL = "dev.macos-runner.runner-version";
const DISK_SIZE_ANNOTATION = "org.cirruslabs.tart.uncompressed-disk-size";
const UPLOAD_TIME_ANNOTATION = "org.cirruslabs.tart.upload-time";

export interface ImageInfo {
  digest: string;
  /** Bytes of the unpacked disk, when the manifest says. */
  uncompressedDiskSize?: number;
  uploadedAt?: string;
  labels: Record<string, string>;
  runnerVersion?: string;
}

export async function readImageInfo(registry: RegistryClient, namespace: string, reference: string): Promise<ImageInfo> {
  const { digest, manifest } = await registry.getManifest(namespace, reference);
  const config = await registry.getJsonBlob<{ config?: { Labels?: Record<string, string> | null } }>(namespace, manifest.config.digest);
  // Labels live in the OCI config; a manifest annotation of the same name counts too (other push tools).
  const labels = { ...manifest.annotations, ...config?.config?.Labels };
  const size = Number(manifest.annotations?.[DISK_SIZE_ANNOTATION]);
  return {
    digest,
    ...(Number.isFinite(size) && size > 0 && { uncompressedDiskSize: size }),
    ...(manifest.annotations?.[UPLOAD_TIME_ANNOTATION] && { uploadedAt: manifest.annotations[UPLOAD_TIME_ANNOTATION] }),
    labels,
    ...(labels[RUNNER_VERSION_LABEL] && { runnerVersion: labels[RUNNER_VERSION_LABEL] }),
  };
}

// Free space on tart's volume, and how much `pull` wants free first.
import { existsSync, statfsSync } from "node:fs";
import { dirname } from "node:path";

export const GB = 1e9;
/** Room kept free beyond the image itself: the clones the slots make, logs, macOS. */
export const DISK_MARGIN_GB = 20;
/** tart's default disk, for an image whose manifest does not say its size. */
const UNKNOWN_IMAGE_GB = 50;

/** For an unprivileged process, on the volume holding `path` or its nearest existing parent. */
export function freeBytes(path: string): number {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  const s = statfsSync(p);
  return s.bavail * s.bsize;
}

export function requiredFreeBytes(minFreeGb: number | undefined, uncompressedDiskSize: number | undefined): number {
  if (minFreeGb !== undefined) return minFreeGb * GB;
  return (uncompressedDiskSize ?? UNKNOWN_IMAGE_GB * GB) + DISK_MARGIN_GB * GB;
}

export function formatGb(bytes: number): string {
  return `${(bytes / GB).toFixed(1)} GB`;
}

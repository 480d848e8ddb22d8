// Free space where tart keeps VMs and images: a pull of a new image version
// needs the space the image takes on disk (tart list's Size: allocated, the
// disk image is sparse) while the old version is still in use, plus a floor.
import { statfsSync } from "node:fs";
import { tartHome } from "../../vm/tart-cache.ts";
import { parseImageRef } from "../../image/oci-ref.ts";
import { fail, pass, skip, warn, type Check } from "./types.ts";

/** Space a host keeps free beyond an image: clones' growth, logs, macOS updates. */
export const PULL_FLOOR_GB = 30;
/** Assumed image size before one is cached (a macOS image with Xcode takes ~40 GB of its 50 GB disk). */
const DEFAULT_IMAGE_GB = 40;

export const diskCheck: Check = async (ctx) => {
  const { config, tart } = ctx;
  if (!config || !tart) return [skip("disk", "config invalid")];
  const home = tartHome(ctx.env);
  let freeGb: number;
  try {
    const st = statfsSync(home);
    freeGb = (st.bavail * st.bsize) / 1e9;
  } catch (err) {
    return [fail("disk", `cannot read free space of ${home}: ${(err as Error).message}`, "check TART_HOME")];
  }
  let imageGb = DEFAULT_IMAGE_GB;
  let sizeFrom = `assumed ${DEFAULT_IMAGE_GB} GB (not cached yet)`;
  try {
    const r = await ctx.run([config.host.tartPath, "list", "--format", "json"]);
    const entries = JSON.parse(r.stdout || "[]") as { Name: string; Size: number }[];
    const remote = parseImageRef(config.image.ref);
    const hit = entries.find((e) => e.Name === config.image.ref || (remote && e.Name.startsWith(`${remote.host}/${remote.namespace}`)));
    if (hit) {
      imageGb = hit.Size;
      sizeFrom = `${hit.Size} GB on disk (${hit.Name})`;
    }
  } catch {
    // keep the assumption
  }
  const need = imageGb + PULL_FLOOR_GB;
  const found = `${freeGb.toFixed(1)} GB free in ${home}; image ${sizeFrom}, floor ${PULL_FLOOR_GB} GB`;
  if (freeGb < imageGb) return [fail("disk", found, "free space: tart prune --entries caches --older-than 7, delete old VMs (tart list), or a bigger disk")];
  if (freeGb < need) return [warn("disk", found, `a pull of the next image needs ${need} GB; tart prune --entries caches --older-than 7`)];
  return [pass("disk", found)];
};

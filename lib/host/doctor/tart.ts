// tart is installed where the config says, and is at least the lowest version we support.
import { judgeTartVersion } from "../../vm/tart-version.ts";
import { fail, pass, skip, type Check } from "./types.ts";

export const tartCheck: Check = async (ctx) => {
  if (!ctx.config) return [skip("tart", "config invalid")];
  const path = ctx.config.host.tartPath;
  const r = await ctx.run([path, "--version"]);
  if (r.code === 127) return [fail("tart", `tart not found at "${path}"`, "install it (brew install cirruslabs/cli/tart) or fix host.tart_path")];
  if (r.code !== 0) return [fail("tart", `${path} --version failed: ${r.stderr || `exit ${r.code}`}`, "reinstall tart (brew reinstall cirruslabs/cli/tart)")];
  const verdict = judgeTartVersion(r.stdout);
  if (!verdict.ok) return [fail("tart", `${verdict.problem} (at ${path})`, verdict.fix)];
  return [pass("tart", `tart ${verdict.version} at ${path}`)];
};

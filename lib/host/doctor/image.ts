// The golden image: the registry takes the credentials, the tag exists, and the
// digest the slots clone is in tart's cache. A manifest is asked for as tart asks.
import type { Config } from "../../config/index.ts";
import { registryCredentials } from "../../slot/context.ts";
import { MacosRunnerError } from "../../core/errors.ts";
import { inspectImageLock } from "../../image/pin.ts";
import { cachedDigest, hasDigest, tartHome } from "../../vm/tart-cache.ts";
import { parseImageRef } from "../../image/oci-ref.ts";
import { OCI_MANIFEST } from "../../image/registry.ts";
import { fail, pass, skipAll, warn, withDeadline, type CheckResult, type DoctorContext } from "./types.ts";

export async function imageChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const { config, tart } = ctx;
  if (!config || !tart) return skipAll(["registry", "image-tag", "image-local"], "config invalid");
  const { ref } = config.image;
  const remote = parseImageRef(ref);
  if (!remote) {
    const local = (await tart.list().catch(() => [])).some((v) => v.Name === ref);
    return [
      pass("registry", `image.ref ${ref} is a local VM; no registry`),
      pass("image-tag", "local image"),
      local ? pass("image-local", `VM ${ref} exists`) : fail("image-local", `no local VM named ${ref}`, "create it (tart clone) or set image.ref to a registry reference"),
    ];
  }
  const out: CheckResult[] = [];
  const url = `${config.image.insecure ? "http" : "https"}://${remote.host}/v2/${remote.namespace}/manifests/${remote.reference}`;
  let registryDigest: string | undefined;
  try {
    const headers: Record<string, string> = { accept: OCI_MANIFEST, ...basicAuth(config) };
    const res = await withDeadline(ctx.timeoutMs, remote.host, (signal) => fetch(url, { method: "HEAD", headers, signal }));
    if (res.status === 401 || res.status === 403) {
      out.push(fail("registry", `${remote.host} refused ${config.image.username ? `user ${config.image.username}` : "anonymous access"} (${res.status})`,
        config.image.username ? "fix image.username / the password in image.password_path (the registry's htpasswd)" : "set image.username and image.password_path"));
      out.push(...skipAll(["image-tag"], "registry refused the credentials"));
    } else if (res.status === 404) {
      out.push(pass("registry", `${remote.host} answered with the configured credentials`));
      out.push(fail("image-tag", `${remote.namespace}:${remote.reference} is not in ${remote.host}`, "publish the image under that tag (tart push) or fix image.ref"));
    } else if (res.status !== 200) {
      out.push(fail("registry", `${url} answered ${res.status}`, "check the registry's health and its logs"));
      out.push(...skipAll(["image-tag"], "registry error"));
    } else {
      registryDigest = res.headers.get("docker-content-digest") ?? undefined;
      out.push(pass("registry", `${remote.host} answered with the configured credentials`));
      out.push(pass("image-tag", `${ref} is ${registryDigest ?? "present (no digest header)"}`));
    }
  } catch (err) {
    if (err instanceof MacosRunnerError) {
      out.push(fail("registry", err.message, "save the registry user's password there (mode 0600)"));
      out.push(...skipAll(["image-tag"], "no registry password"));
    } else {
      out.push(fail("registry", `${remote.host} unreachable (${(err as Error).message})`, `check the address in image.ref${config.image.insecure ? "" : " (a plain-HTTP registry needs image.insecure: true)"}, DNS and the registry service`));
      out.push(...skipAll(["image-tag"], "registry unreachable"));
    }
  }

  const home = tartHome(ctx.env);
  const { lock, problem } = inspectImageLock(config.host.stateDir);
  if (problem) out.push(fail("image-local", problem, "let pull write it again (remove the file; pull re-pins)"));
  else if (lock) {
    if (hasDigest(lock.ref, lock.digest, home)) out.push(pass("image-local", `pinned ${lock.digest} is in tart's cache`));
    else out.push(fail("image-local", `pinned ${lock.digest} (image.lock) is not in tart's cache (${home})`, `tart pull ${lock.ref.replace(/[:@][^/]*$/, "")}@${lock.digest}, or let pull re-pin`));
  } else {
    const cached = cachedDigest(ref, home);
    if (!cached) out.push(warn("image-local", `${ref} is not in tart's cache yet`, `tart pull ${ref} now, or the first clone pulls it (slow)`));
    else if (registryDigest && cached !== registryDigest) out.push(warn("image-local", `cached ${ref} is ${cached}, the registry has ${registryDigest}`, `tart pull ${ref} (clones use the cached version until then)`));
    else out.push(pass("image-local", `${ref} cached as ${cached}`));
  }
  return out;
}

function basicAuth(config: Config): { authorization?: string } {
  const creds = registryCredentials(config);
  return creds ? { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}` } : {};
}

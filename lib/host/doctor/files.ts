// Secret files private and the user's own; known_hosts pins the guest's key.
// Works from the raw YAML too, so a config that failed to load (often: a
// secret's mode) is still checked file by file.
import { readFileSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { parse } from "yaml";
import { expandPath } from "../../config/values.ts";
import { HOST_KEY_ALIAS } from "../../vm/ssh.ts";
import { fail, pass, skip, type Check, type CheckResult, type DoctorContext } from "./types.ts";

interface Paths {
  secrets: { key: string; path: string }[];
  knownHosts: string | undefined;
  /** vm.transport is ssh. */
  ssh: boolean;
}

function pathsOf(ctx: DoctorContext): Paths {
  const c = ctx.config;
  if (c) {
    const secrets = [
      c.github.auth.kind === "app" ? { key: "github.app.private_key_path", path: c.github.auth.privateKeyPath } : { key: "github.token_path", path: c.github.auth.tokenPath },
      ...(c.image.passwordPath ? [{ key: "image.password_path", path: c.image.passwordPath }] : []),
      ...(c.vm.ssh ? [{ key: "vm.ssh.private_key_path", path: c.vm.ssh.privateKeyPath }] : []),
    ];
    return { secrets, knownHosts: c.vm.ssh?.knownHostsPath, ssh: c.vm.transport === "ssh" };
  }
  let doc: Record<string, any> = {};
  try {
    doc = parse(readFileSync(ctx.configPath, "utf8")) ?? {};
  } catch {
    return { secrets: [], knownHosts: undefined, ssh: false };
  }
  const base = { home: ctx.env.HOME || undefined, dir: dirname(ctx.configPath) };
  const raw = (key: string): unknown => key.split(".").reduce<any>((o, k) => (o && typeof o === "object" ? o[k] : undefined), doc);
  const at = (key: string): string | undefined => {
    const v = raw(key);
    if (typeof v !== "string") return undefined;
    try {
      return expandPath(v, base);
    } catch {
      return undefined;
    }
  };
  const keys = ["github.app.private_key_path", "github.token_path", "image.password_path", "vm.ssh.private_key_path"];
  return { secrets: keys.flatMap((key) => (at(key) ? [{ key, path: at(key)! }] : [])), knownHosts: at("vm.ssh.known_hosts_path"), ssh: raw("vm.transport") === "ssh" };
}

function secretProblem(path: string, uid: number): { found: string; fix: string } | undefined {
  let st;
  try {
    st = statSync(path);
  } catch {
    return { found: `${path} does not exist`, fix: `create it (mode 0600) or fix the config` };
  }
  if (!st.isFile()) return { found: `${path} is not a regular file`, fix: "point the config at the file itself" };
  const mode = (st.mode & 0o777).toString(8).padStart(4, "0");
  if ((st.mode & 0o077) !== 0) return { found: `${path} is mode ${mode} (others can read it)`, fix: `chmod 600 ${path}` };
  if (st.uid !== uid) return { found: `${path} is owned by uid ${st.uid}, not ${uid}`, fix: `chown ${uid} ${path}` };
  return undefined;
}

export const secretsCheck: Check = async (ctx) => {
  const { secrets } = pathsOf(ctx);
  if (secrets.length === 0) return [fail("secrets", "no secret file paths could be read from the config", "set github.app.private_key_path (or github.token_path), and vm.ssh.private_key_path for vm.transport ssh")];
  const problems = secrets.flatMap((s) => {
    const p = secretProblem(s.path, ctx.uid);
    return p ? [{ ...p, key: s.key }] : [];
  });
  if (problems.length === 0) return [pass("secrets", `${secrets.map((s) => s.key).join(", ")}: present, mode 0600, owned by uid ${ctx.uid}`)];
  return [fail("secrets", problems.map((p) => `${p.key}: ${p.found}`).join("; "), problems.map((p) => p.fix).join("; "))];
};

export const knownHostsCheck: Check = async (ctx): Promise<CheckResult[]> => {
  const { knownHosts: path, ssh } = pathsOf(ctx);
  if (!path && !ssh) return [skip("known-hosts", "vm.ssh.known_hosts_path is not set; vm.transport exec does not use ssh")];
  if (!path) return [fail("known-hosts", "vm.ssh.known_hosts_path is not set", "set it to a known_hosts file holding the golden image's host key")];
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    return [fail("known-hosts", `${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, "copy the image's known_hosts there (ansible does)")];
  }
  const pinned = text.split("\n").some((l) => l.trim().split(/\s+/)[0]?.split(",").includes(HOST_KEY_ALIAS));
  if (!pinned) return [fail("known-hosts", `${path} has no ${HOST_KEY_ALIAS} line`, `add "${HOST_KEY_ALIAS} <key type> <key>" from the golden image's /etc/ssh/ssh_host_*_key.pub`)];
  return [pass("known-hosts", `${path} pins ${HOST_KEY_ALIAS}`)];
};

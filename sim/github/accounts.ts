// Who may call the API: the GitHub App (JWT), its installations and their
// tokens, and one classic PAT of an admin user.
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../lib/core/fs.ts";
import { DIST_SIM } from "../compiled.ts";
import { ApiError } from "./http.ts";
import type { Clock } from "./clock.ts";
import { publicKeyOf, verifyAppJwt, type AppIdentity } from "./jwt.ts";
import { githubToken } from "./secrets.ts";
import type { InstallationOption, Permission } from "./types.ts";

export interface Installation {
  id: number;
  account: string;
  accountType: "Organization" | "User";
  accountId: number;
  permissions: Record<string, Permission>;
}

/** Who a request is: an installation (with its token's permissions) or the PAT's admin user. */
export type Caller =
  | { kind: "installation"; installation: Installation; permissions: Record<string, Permission> }
  | { kind: "pat" };

export const FULL_PERMISSIONS: Record<string, Permission> = {
  administration: "write",
  organization_self_hosted_runners: "write",
  metadata: "read",
};

const APP_ID = 123456;
const APP_SLUG = "macos-runner-sim";

/** The app's key, made once per checkout and kept in dist/sim (an RSA key takes up to 0.2 s of CPU to make). */
const APP_KEY_FILE = join(DIST_SIM, "github-app-key.pem");
let appKey: string | undefined;
function appKeyPem(): string {
  if (appKey) return appKey;
  try {
    appKey = readFileSync(APP_KEY_FILE, "utf8");
  } catch {
    appKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
    mkdirSync(DIST_SIM, { recursive: true });
    // Another process may write it meanwhile: either key is whole and serves.
    writeFileAtomic(APP_KEY_FILE, appKey, 0o600, { sync: false });
  }
  return appKey;
}

export class Accounts {
  readonly app: AppIdentity & { privateKeyPem: string; slug: string };
  readonly installations: Installation[];
  readonly pat = githubToken("ghp");
  private readonly tokens = new Map<string, { installation: Installation; permissions: Record<string, Permission>; expiresAt: number }>();

  constructor(
    private readonly clock: Clock,
    orgs: string[],
    users: string[],
    options: InstallationOption[] | undefined,
    private readonly tokenTtlMs: number,
  ) {
    const privateKeyPem = appKeyPem();
    this.app = { id: APP_ID, clientId: "Iv23liSimMacosRunner", slug: APP_SLUG, privateKeyPem, publicKey: publicKeyOf(privateKeyPem) };
    const wanted: InstallationOption[] = options ?? [...orgs, ...users].map((account) => ({ account }));
    this.installations = wanted.map((o, i) => {
      const isOrg = orgs.includes(o.account);
      if (!isOrg && !users.includes(o.account)) {
        throw new Error(`sim/github: installation on "${o.account}", which is neither a configured org nor a repo owner`);
      }
      return {
        id: 40_000_000 + i + 1,
        account: o.account,
        accountType: isOrg ? "Organization" : "User",
        accountId: 9_000_000 + i + 1,
        permissions: o.permissions ?? FULL_PERMISSIONS,
      };
    });
  }

  installationFor(account: string): Installation | undefined {
    return this.installations.find((i) => i.account.toLowerCase() === account.toLowerCase());
  }

  installationById(id: number): Installation | undefined {
    return this.installations.find((i) => i.id === id);
  }

  /** Checks an `Authorization: bearer <JWT>` header for the app routes. */
  requireApp(authorization: string | undefined): void {
    const jwt = /^bearer\s+(\S+)$/i.exec(authorization ?? "")?.[1];
    if (!jwt) throw new ApiError(401, "A JSON web token could not be decoded");
    verifyAppJwt(jwt, this.app, this.clock.nowS());
  }

  /** Installation token or PAT from `Authorization: token|bearer X`; 401 when missing, unknown or expired. */
  caller(authorization: string | undefined): Caller {
    if (!authorization) throw new ApiError(401, "Requires authentication");
    const token = /^(?:token|bearer)\s+(\S+)$/i.exec(authorization)?.[1];
    if (token === this.pat) return { kind: "pat" };
    const entry = token ? this.tokens.get(token) : undefined;
    if (!entry || entry.expiresAt <= this.clock.now()) throw new ApiError(401, "Bad credentials");
    return { kind: "installation", installation: entry.installation, permissions: entry.permissions };
  }

  /** A new installation token; `requested` must be a subset of the installation's permissions. */
  issueToken(installation: Installation, requested?: Record<string, Permission>): { token: string; expiresAt: number; permissions: Record<string, Permission> } {
    let permissions = installation.permissions;
    if (requested) {
      for (const [name, level] of Object.entries(requested)) {
        const granted = installation.permissions[name];
        if (!granted || (level === "write" && granted !== "write")) {
          throw new ApiError(422, "The permissions requested are not granted to this installation.");
        }
      }
      permissions = requested;
    }
    const token = githubToken("ghs");
    const expiresAt = this.clock.now() + this.tokenTtlMs;
    this.tokens.set(token, { installation, permissions, expiresAt });
    return { token, expiresAt, permissions };
  }

  /**
   * GitHub revoking installation tokens before they expire (DELETE
   * /installation/token, or the app's key rotated): every token of the
   * account's installation, or of all installations, answers 401 from now on.
   */
  revokeTokens(account?: string): number {
    let revoked = 0;
    for (const [token, entry] of this.tokens) {
      if (account !== undefined && entry.installation.account.toLowerCase() !== account.toLowerCase()) continue;
      this.tokens.delete(token);
      revoked++;
    }
    return revoked;
  }

  /** The spec's `installation` object. */
  installationJson(i: Installation, baseUrl: string): Record<string, unknown> {
    const login = i.account;
    const userUrl = `${baseUrl}/users/${login}`;
    return {
      id: i.id,
      account: {
        login,
        id: i.accountId,
        node_id: Buffer.from(`${i.accountType}${i.accountId}`).toString("base64"),
        avatar_url: `https://avatars.githubusercontent.com/u/${i.accountId}?v=4`,
        gravatar_id: "",
        url: i.accountType === "Organization" ? `${baseUrl}/orgs/${login}` : userUrl,
        html_url: `https://github.com/${login}`,
        followers_url: `${userUrl}/followers`,
        following_url: `${userUrl}/following{/other_user}`,
        gists_url: `${userUrl}/gists{/gist_id}`,
        starred_url: `${userUrl}/starred{/owner}{/repo}`,
        subscriptions_url: `${userUrl}/subscriptions`,
        organizations_url: `${userUrl}/orgs`,
        repos_url: `${userUrl}/repos`,
        events_url: `${userUrl}/events{/privacy}`,
        received_events_url: `${userUrl}/received_events`,
        type: i.accountType,
        site_admin: false,
      },
      repository_selection: "all",
      access_tokens_url: `${baseUrl}/app/installations/${i.id}/access_tokens`,
      repositories_url: `${baseUrl}/installation/repositories`,
      html_url: `https://github.com/organizations/${login}/settings/installations/${i.id}`,
      app_id: this.app.id,
      client_id: this.app.clientId,
      app_slug: this.app.slug,
      target_id: i.accountId,
      target_type: i.accountType,
      permissions: i.permissions,
      events: [],
      created_at: "2026-01-05T10:00:00Z",
      updated_at: "2026-01-05T10:00:00Z",
      single_file_name: null,
      has_multiple_single_files: false,
      single_file_paths: [],
      suspended_by: null,
      suspended_at: null,
    };
  }
}

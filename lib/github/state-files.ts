// What lib/github remembers between cycles, under host.state_dir (0600 files
// shared by the host's slots), and the key of each entry: a state directory
// may serve more than one GitHub or scope over its life.
import { join } from "node:path";
import type { Config } from "../config/index.ts";

type GitHubConfig = Config["github"];

export const stateFiles = {
  /** Installation tokens, as auth-app serializes them, by installation. */
  tokens: (stateDir: string) => join(stateDir, "github-token-cache.json"),
  /** The app's installation id for github.url, when github.app.installation_id is not set. */
  installations: (stateDir: string) => join(stateDir, "github-installation.json"),
  /** Runner group ids by name. */
  groups: (stateDir: string) => join(stateDir, "github-runner-groups.json"),
  /** Held while one slot fetches credentials, so the other reuses them. */
  credentialsLock: (stateDir: string) => join(stateDir, "github-credentials.lock"),
};

export const stateKeys = {
  /** `authAppKey`: auth-app's cache key, the installation id. */
  token: (github: GitHubConfig, authAppKey: string | number) => `${github.apiUrl} installation ${authAppKey}`,
  installation: (github: GitHubConfig) => `${github.apiUrl} ${github.url}`,
  group: (github: GitHubConfig, name: string) => `${github.apiUrl} ${github.url} ${name}`,
};

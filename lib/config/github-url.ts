// github.url says where runners register: an org, a repo or an enterprise;
// the REST API URL follows from its host unless github.api_url is given.
import { Invalid } from "./problems.ts";

export type Scope = { kind: "org"; org: string } | { kind: "repo"; owner: string; repo: string } | { kind: "enterprise"; enterprise: string };

export interface GithubTarget {
  /** Normalised: scheme, lower-case host, the path parts, no trailing slash. */
  url: string;
  scope: Scope;
}

const FORMS = "https://HOST/ORG, https://HOST/OWNER/REPO or https://HOST/enterprises/NAME";
const NAME = /^[A-Za-z0-9._-]+$/;

export function parseGithubUrl(raw: string): GithubTarget {
  const bad = (why: string) => new Invalid(`must be ${FORMS}, got ${JSON.stringify(raw)} (${why})`);
  const url = httpUrl(raw, bad);
  const parts = url.pathname.replace(/\/+$/, "").split("/").slice(1);
  const [first, second] = parts;
  if (first === undefined || parts.length > 2) throw bad(first === undefined ? "no org, repo or enterprise in the path" : "too many path parts");
  if (!parts.every((p) => NAME.test(p))) throw bad("path parts may hold only letters, digits, '.', '_' and '-'");
  const base = `${url.protocol}//${url.host}`;
  const normalised = `${base}/${parts.join("/")}`;
  if (first === "enterprises") {
    if (second === undefined) throw bad("no enterprise name after /enterprises");
    return { url: normalised, scope: { kind: "enterprise", enterprise: second } };
  }
  if (second === undefined) return { url: normalised, scope: { kind: "org", org: first } };
  if (second.endsWith(".git")) throw bad("that is a clone URL; drop the .git");
  return { url: normalised, scope: { kind: "repo", owner: first, repo: second } };
}

/** github.api_url: any http(s) URL without query or fragment; no trailing slash. */
export function parseApiUrl(raw: string): string {
  const url = httpUrl(raw, (why) => new Invalid(`must be an http(s) URL such as https://ghe.example.com/api/v3, got ${JSON.stringify(raw)} (${why})`));
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
}

/** The REST API for a github.url: api.github.com, api.SUB.ghe.com (GHE.com), else GHES's /api/v3. */
export function defaultApiUrl(githubUrl: string): string {
  const url = new URL(githubUrl);
  if (url.hostname === "github.com" || url.hostname === "www.github.com") return "https://api.github.com";
  if (url.hostname.endsWith(".ghe.com")) return `${url.protocol}//api.${url.host}`;
  return `${url.protocol}//${url.host}/api/v3`;
}

function httpUrl(raw: string, bad: (why: string) => Invalid): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad("not a URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw bad(`scheme ${url.protocol.slice(0, -1)} is not http(s)`);
  if (url.search || url.hash) throw bad("no query or fragment allowed");
  // Not echoed: the message would carry the credentials into logs.
  if (url.username || url.password) throw new Invalid("must not hold credentials; they belong in a secret file (github.app or github.token_path)");
  return url;
}

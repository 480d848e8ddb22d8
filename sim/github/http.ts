// Replies, GitHub-shaped errors and a tiny router keyed by the spec's path templates.

export const DOCS_URL = "https://docs.github.com/rest";

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** A failure answered with GitHub's error body `{message, documentation_url, status}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function errorBody(status: number, message: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { message, documentation_url: DOCS_URL, ...extra, status: String(status) };
}

export const notFound = () => new ApiError(404, "Not Found");

/** GitHub's standard message per status, used when a fault gives no body. */
export function defaultMessage(status: number): string {
  const messages: Record<number, string> = {
    400: "Problems parsing JSON",
    401: "Bad credentials",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Validation Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Server Error",
    503: "Service Unavailable",
  };
  return messages[status] ?? `HTTP ${status}`;
}

export interface Route<C> {
  method: string;
  template: string;
  handler: (ctx: C, params: Record<string, string>) => Reply | Promise<Reply>;
}

export interface Match<C> {
  route: Route<C>;
  params: Record<string, string>;
}

/** Matches concrete paths against templates like `/repos/{owner}/{repo}/actions/runners/{runner_id}`. */
export class Router<C> {
  private readonly routes: { route: Route<C>; regex: RegExp; names: string[] }[] = [];

  add(method: string, template: string, handler: Route<C>["handler"]): this {
    const names: string[] = [];
    const source = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{(\w+)\}/g, (_, name: string) => {
      names.push(name);
      return "([^/]+)";
    });
    this.routes.push({ route: { method, template, handler }, regex: new RegExp(`^${source}$`), names });
    return this;
  }

  /** Every route as [method, template]. */
  operations(): [string, string][] {
    return this.routes.map(({ route }) => [route.method, route.template]);
  }

  /** The route for this method and path; `undefined` if none, "method" if only the method is wrong. */
  match(method: string, path: string): Match<C> | "method" | undefined {
    let pathMatched = false;
    for (const { route, regex, names } of this.routes) {
      const m = regex.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
      return { route, params };
    }
    return pathMatched ? "method" : undefined;
  }
}

// An HTTP front for the real registry, for registries that behave otherwise:
// token (Bearer) auth like GHCR/Harbor, a manifest that does not match its
// digest, a registry that fails. Everything it does not change is forwarded
// as is (Authorization included) to the docker-registry the test started.

export interface Proxy {
  /** host:port */
  host: string;
  /** Paths (with query) of the requests it saw, in order. */
  seen: string[];
  stop(): void;
}

export type Handler = (req: Request, url: URL, forward: () => Promise<Response>) => Response | Promise<Response>;

export function startProxy(target: string, handle: Handler = (_req, _url, forward) => forward(), port = 0): Proxy {
  const seen: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port,
    async fetch(req) {
      const url = new URL(req.url);
      seen.push(`${req.method} ${url.pathname}${url.search}`);
      const forward = async () => {
        const headers = new Headers(req.headers);
        headers.delete("host");
        const res = await fetch(`http://${target}${url.pathname}${url.search}`, {
          method: req.method,
          headers,
          body: req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer(),
          redirect: "manual",
        });
        // Location headers point at the registry itself; keep clients on the proxy.
        const out = new Headers(res.headers);
        const location = out.get("location");
        if (location) out.set("location", location.replace(`http://${target}`, ""));
        out.delete("content-encoding");
        return new Response(req.method === "HEAD" ? null : await res.arrayBuffer(), { status: res.status, headers: out });
      };
      return handle(req, url, forward);
    },
  });
  return { host: `127.0.0.1:${server.port}`, seen, stop: () => server.stop(true) };
}

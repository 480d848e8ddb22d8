// The OCI Distribution calls tart makes when pulling (OCI/Registry.swift):
// plain HTTP with --insecure, Basic auth from TART_REGISTRY_* after a 401
// challenge, manifests fetched with only the OCI Accept header.
import { TartError } from "./errors.ts";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

export class UnexpectedHTTPStatusCode extends TartError {
  constructor(when: string, code: number, details: string) {
    super(`UnexpectedHTTPStatusCode(when: "${when}", code: ${code}, details: ${JSON.stringify(details)})`);
  }
}

function credentialsFor(host: string): string | undefined {
  const { TART_REGISTRY_USERNAME: user, TART_REGISTRY_PASSWORD: pass, TART_REGISTRY_HOSTNAME: only } = process.env;
  if (!user || !pass || (only && only !== host)) return undefined;
  return `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
}

export class RegistryClient {
  private auth: string | undefined;
  private readonly base: string;

  constructor(
    private readonly host: string,
    namespace: string,
    insecure: boolean,
  ) {
    this.base = `${insecure ? "http" : "https"}://${host}/v2/${namespace}`;
  }

  private async get(path: string, when: string, headers: Record<string, string> = {}): Promise<Response> {
    const send = () =>
      fetch(`${this.base}${path}`, {
        headers: { ...headers, ...(this.auth ? { Authorization: this.auth } : {}) },
        signal: AbortSignal.timeout(60_000),
      }).catch((err: Error) => {
        throw new TartError(`${err.message} (${when}, ${this.host})`);
      });
    let res = await send();
    if (res.status === 401 && !this.auth && /^basic/i.test(res.headers.get("www-authenticate") ?? "")) {
      this.auth = credentialsFor(this.host);
      if (this.auth) {
        await res.body?.cancel();
        res = await send();
      }
    }
    if (res.status !== 200) throw new UnexpectedHTTPStatusCode(when, res.status, await res.text());
    return res;
  }

  /** The manifest's raw bytes: its digest is sha256 over exactly these. */
  async pullManifest(reference: string): Promise<Buffer> {
    const res = await this.get(`/manifests/${reference}`, "pulling manifest", { Accept: OCI_MANIFEST });
    return Buffer.from(await res.arrayBuffer());
  }

  async pullBlob(digest: string): Promise<Buffer> {
    const res = await this.get(`/blobs/${digest}`, "pulling blob");
    return Buffer.from(await res.arrayBuffer());
  }
}

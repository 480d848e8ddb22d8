// Installation tokens persisted across cycles and shared by a host's slots, so
// a steady-state cycle costs one API call (the JIT config). Our own record,
// {token, expiresAt}; a token closer to expiry than the margin is not handed out.
import type { ExpiringToken } from "./answers.ts";
import { JsonMapFile } from "./json-map-file.ts";

/** Tokens closer to expiry than this are not reused (a job start must not race the expiry). */
export const EXPIRY_MARGIN_MS = 10 * 60 * 1000;

const isExpiringToken = (v: unknown): v is ExpiringToken =>
  typeof (v as ExpiringToken | undefined)?.token === "string" && typeof (v as ExpiringToken).expiresAt === "string";

export class TokenCache {
  private readonly file: JsonMapFile<ExpiringToken>;

  constructor(
    path: string,
    private readonly now: () => number = Date.now,
  ) {
    this.file = new JsonMapFile(path, isExpiringToken);
  }

  /** The cached token for `key` if it is good for more than EXPIRY_MARGIN_MS. */
  get(key: string): ExpiringToken | undefined {
    const entry = this.file.get(key);
    if (!entry) return undefined;
    return Date.parse(entry.expiresAt) - this.now() > EXPIRY_MARGIN_MS ? entry : undefined;
  }

  set(key: string, token: ExpiringToken): void {
    this.file.set(key, token);
  }

  delete(key: string): void {
    this.file.delete(key);
  }
}

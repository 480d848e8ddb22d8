// Checks on bodies sent to the control API, answered 400 with a message
// naming the bad field.

/** A control-API call with a malformed body (answered 400). */
export class UsageErrorBody extends Error {}

export function requireString(body: Record<string, unknown>, field: string, where: string): string {
  const value = body[field];
  if (typeof value !== "string" || value === "") throw new UsageErrorBody(`${where}: "${field}" must be a non-empty string`);
  return value;
}

export function optionalStrings(body: Record<string, unknown>, field: string, where: string): string[] | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new UsageErrorBody(`${where}: "${field}" must be an array of strings`);
  }
  return value as string[];
}

export function asObject(body: unknown, where: string): Record<string, unknown> {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new UsageErrorBody(`${where}: body must be a JSON object`);
  return body as Record<string, unknown>;
}

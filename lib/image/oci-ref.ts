// Image references as tart reads them: host(:port)?/namespace(:tag|@sha256:hex)?.
// There is no default registry, so a name with no `/` is a local VM name.

export interface ImageRef {
  host: string;
  /** e.g. ci/macos-runner */
  namespace: string;
  /** A tag or a digest. */
  reference: string;
}

const COMPONENT = "[a-z0-9]+(?:[._-][a-z0-9]+)*";
const REF = new RegExp(
  `^([A-Za-z0-9.-]+(?::\\d+)?)/(${COMPONENT}(?:/${COMPONENT})*)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})|@(sha256:[0-9a-f]{64}))?$`,
);
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Undefined for a local VM name. */
export function parseImageRef(ref: string): ImageRef | undefined {
  const m = REF.exec(ref);
  if (!m) return undefined;
  return { host: m[1]!, namespace: m[2]!, reference: m[4] ?? m[3] ?? "latest" };
}

export function isDigest(reference: string): boolean {
  return DIGEST.test(reference);
}

export function formatImageRef(r: ImageRef): string {
  return `${r.host}/${r.namespace}${isDigest(r.reference) ? "@" : ":"}${r.reference}`;
}

export function withDigest(r: ImageRef, digest: string): string {
  return formatImageRef({ ...r, reference: digest });
}

export function shortDigest(digest: string): string {
  return digest.slice(0, "sha256:".length + 12);
}

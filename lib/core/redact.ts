// Scrubs secrets from text before it is written: registered values (in their
// escaped forms too, as the logger runs it on the serialised line), 24-character
// fragments of a JIT config's secrets, and secret shapes. Nothing is guessed from
// how random a string looks: SHAs, digests and names are what an operator needs.

const MIN_SECRET_LENGTH = 8;
/** A shorter piece of a fragment-registered secret would match by chance. */
export const MIN_FRAGMENT_LENGTH = 24;
const REDACTED = "[REDACTED]";

/** Longest first. */
let secretForms: string[] = [];
const fragmentWindows = new Set<string>();
// A window never holds a quote, backslash, whitespace or control character, so
// a match never reaches into a JSON string's delimiter or cuts an escape.
const UNSAFE_IN_WINDOW = /["\\\s\u0000-\u001f\u007f]/;

/** Also scrubs its encoded and base64-decoded forms; under 8 characters would mangle ordinary words. */
export function registerSecret(value: string): void {
  addForms(variantsOf(value));
}

function addForms(variants: string[]): void {
  const forms = new Set(secretForms);
  for (const variant of variants) {
    for (const form of encodingsOf(variant)) if (form.length >= MIN_SECRET_LENGTH) forms.add(form);
  }
  secretForms = [...forms].sort((a, b) => b.length - a.length);
}

export function registerSecretFragments(value: string): void {
  addForms(encodedVariantsOf(value));
  const v = value.trim();
  for (let i = 0; i + MIN_FRAGMENT_LENGTH <= v.length; i++) {
    const window = v.slice(i, i + MIN_FRAGMENT_LENGTH);
    if (!UNSAFE_IN_WINDOW.test(window)) fragmentWindows.add(window);
  }
}

function addVariant(out: string[], v: string): void {
  if (v.length >= MIN_SECRET_LENGTH && !out.includes(v)) out.push(v);
}

/** Raw, trimmed (as read from a file) and base64-encoded. */
function encodedVariantsOf(value: string): string[] {
  const out: string[] = [];
  addVariant(out, value);
  addVariant(out, value.trim());
  for (const v of [...out]) {
    const base64 = Buffer.from(v, "utf8").toString("base64");
    addVariant(out, base64);
    addVariant(out, base64.replace(/=+$/, ""));
    addVariant(out, Buffer.from(v, "utf8").toString("base64url"));
  }
  return out;
}

function variantsOf(value: string): string[] {
  const out = encodedVariantsOf(value);
  const add = (v: string) => addVariant(out, v);
  let encoded = value.trim();
  for (let depth = 0; depth < 3; depth++) {
    const decoded = decodeBase64Text(encoded);
    if (decoded === undefined) break;
    add(decoded);
    encoded = decoded.trim();
  }
  // A JIT config decodes to JSON whose members (the runner's files) are base64 again.
  for (const text of [...out]) {
    for (const member of jsonStringMembers(text)) {
      add(member);
      const decoded = decodeBase64Text(member);
      if (decoded !== undefined) add(decoded);
    }
  }
  return out;
}

function jsonStringMembers(text: string): string[] {
  if (!text.startsWith("{")) return [];
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return [];
    return Object.values(parsed).filter((v): v is string => typeof v === "string");
  } catch {
    return [];
  }
}

/** Undefined unless `s` is base64 (or base64url) of printable UTF-8. */
function decodeBase64Text(s: string): string | undefined {
  if (s.length < MIN_SECRET_LENGTH || !/^(?:[A-Za-z0-9+/]+|[A-Za-z0-9_-]+)={0,2}$/.test(s)) return undefined;
  const text = Buffer.from(s, s.includes("-") || s.includes("_") ? "base64url" : "base64").toString("utf8");
  // U+FFFD marks invalid UTF-8; control characters other than whitespace mean binary.
  if (text.length === 0 || /[\uFFFD\u0000-\u0008\u000E-\u001F]/.test(text)) return undefined;
  return text;
}

/** Raw, URL-encoded, and escaped as the logger escapes strings. */
function encodingsOf(v: string): string[] {
  const json = JSON.stringify(v).slice(1, -1);
  return [
    v,
    encodeURIComponent(v),
    json,
    json.replaceAll('\\"', '"'), // the text format escapes control characters but not quotes in msg
    JSON.stringify(json).slice(1, -1), // a JSON document (an HTTP body) embedded in a JSON string
  ];
}

interface Rule {
  pattern: RegExp;
  replace: (match: string, ...args: any[]) => string;
}

const alreadyRedacted = (v: string) => v.startsWith("[REDACTED");

// The start of a token: not glued to a word, or right after an escape such as `\n`.
const TOKEN_START = String.raw`(?:(?<![A-Za-z0-9])|(?<=\\[nrt]))`;
// Body characters of a PEM key: base64, header lines, whitespace and the escapes `\n` `\r`.
const PEM_BODY = String.raw`(?:[A-Za-z0-9+/=\s:,-]|\\[nrt])`;
// A key whose last word names a secret (GITHUB_TOKEN, jitconfig); token_path names a file and is kept.
const SECRET_KEY = String.raw`(?<![A-Za-z0-9._-])[A-Za-z0-9._-]*?(?:token|password|passwd|secret|jit_?config|private_?key|api_?key|credentials?)`;
const PLAIN_VALUES = new Set(["null", "true", "false", "undefined"]);

const RULES: Rule[] = [
  {
    // A private key (PEM, OpenSSH, PGP), BEGIN through END; a truncated one up to where its body stops.
    pattern: new RegExp(
      String.raw`-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----${PEM_BODY}*?(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|(?!${PEM_BODY}))`,
      "g",
    ),
    replace: () => "[REDACTED:private-key]",
  },
  {
    // Authorization header values, keeping the scheme: `Authorization: token [REDACTED]`.
    pattern: /\b((?:proxy-)?authorization\\?"?\s*[:=]\s*\\?"?)((?:bearer|token|basic|digest)\s+)?([^\s"\\,;]+)/gi,
    replace: (m, head, scheme = "", value) => (alreadyRedacted(value) ? m : `${head}${scheme}${REDACTED}`),
  },
  {
    // ghp_/gho_/ghu_/ghs_/ghr_ tokens, including the stateless ghs_APPID_JWT form, and fine-grained PATs.
    pattern: new RegExp(
      String.raw`${TOKEN_START}(?:gh[pousr]_[A-Za-z0-9_-]{10,}(?:\.[A-Za-z0-9_-]+)*|github_pat_[A-Za-z0-9_]{10,})`,
      "g",
    ),
    replace: () => "[REDACTED:github-token]",
  },
  {
    // A JWT: base64url header (always `{"` -> eyJ), payload, signature.
    pattern: /eyJ[A-Za-z0-9_-]{7,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g,
    replace: () => "[REDACTED:jwt]",
  },
  {
    // A password in a URL: scheme://user:PASSWORD@host.
    pattern: /\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@"\\]+:)([^\s/@"\\]+)@/gi,
    replace: (m, head, value) => (alreadyRedacted(value) ? m : `${head}${REDACTED}@`),
  },
  {
    // "token":"…" in JSON, \"token\":\"…\" in JSON embedded in a string, token=… and token="…" in text, env and queries.
    pattern: new RegExp(
      String.raw`(${SECRET_KEY})(?:("\s*:\s*")((?:[^"\\]|\\.)*)(")|(\\"\s*:\s*\\")(.*?)(\\")|(=)("(?:[^"\\]|\\.)*"|[^\s"'\\&,;}\]]+))`,
      "gi",
    ),
    replace: (m, key, jsonSep, jsonValue, jsonEnd, nestedSep, nestedValue, nestedEnd, eq, plain) => {
      if (jsonSep !== undefined) return keep(jsonValue) ? m : `${key}${jsonSep}${REDACTED}${jsonEnd}`;
      if (nestedSep !== undefined) return keep(nestedValue) ? m : `${key}${nestedSep}${REDACTED}${nestedEnd}`;
      const quoted = plain.startsWith('"');
      return keep(quoted ? plain.slice(1, -1) : plain) ? m : `${key}${eq}${quoted ? `"${REDACTED}"` : REDACTED}`;
    },
  },
  {
    // Command-line flags that carry a secret: config.sh --token X, run.sh --jitconfig X.
    pattern: /(--(?:token|jitconfig|password|pat)(?:\s+|=))("(?:[^"\\]|\\.)*"|[^\s"\\]+)/gi,
    replace: (m, flag, value) => (alreadyRedacted(value) ? m : `${flag}${REDACTED}`),
  },
  {
    // `Bearer X` anywhere; `token X` when X looks like a credential (so "token expired" stays).
    pattern: /\b(bearer|token)(\s+)([A-Za-z0-9._~+/=-]{8,})/gi,
    replace: (m, word, space, value) => {
      const credential = word.toLowerCase() === "bearer" || (value.length >= 16 && /[A-Za-z]/.test(value) && /[0-9]/.test(value));
      return credential ? `${word}${space}${REDACTED}` : m;
    },
  },
];

function keep(value: string): boolean {
  return value.length === 0 || alreadyRedacted(value) || PLAIN_VALUES.has(value.toLowerCase());
}

/** Escapes are never cut in half, so a JSON line stays JSON. */
export function redact(text: string): string {
  let out = text;
  for (const form of secretForms) if (out.includes(form)) out = out.replaceAll(form, REDACTED);
  out = scrubFragments(out);
  for (const rule of RULES) out = out.replace(rule.pattern, rule.replace);
  return out;
}

/** Overlapping and touching fragment windows of the unescaped text join into one "[REDACTED]". */
function scrubFragments(text: string): string {
  if (fragmentWindows.size === 0 || text.length < MIN_FRAGMENT_LENGTH) return text;
  const view = unescapedView(text);
  const runs: [number, number][] = [];
  for (let i = 0; i + MIN_FRAGMENT_LENGTH <= view.text.length; i++) {
    if (!fragmentWindows.has(view.text.slice(i, i + MIN_FRAGMENT_LENGTH))) continue;
    const last = runs.at(-1);
    if (last && i <= last[1]) last[1] = i + MIN_FRAGMENT_LENGTH;
    else runs.push([i, i + MIN_FRAGMENT_LENGTH]);
  }
  if (runs.length === 0) return text;
  let out = "";
  let at = 0;
  for (const [from, to] of runs) {
    out += text.slice(at, view.start(from)) + REDACTED;
    at = view.end(to - 1);
  }
  return out + text.slice(at);
}

// Backslashes (one per JSON nesting level) before a non-escape letter or uXXXX, or
// a URL's %XX; `\n` and the like stay, as windows never hold them.
const ESCAPED = /(\\+)(?:u([0-9a-fA-F]{4})|([^\\nrtbfu]))|%([0-9a-fA-F]{2})/g;

interface View {
  text: string;
  /** Offsets of the view's character `i` in the original text. */
  start(i: number): number;
  end(i: number): number;
}

/** `text` with escaped characters decoded, and the way back to the original's offsets. */
function unescapedView(text: string): View {
  if (!text.includes("\\") && !text.includes("%")) return { text, start: (i) => i, end: (i) => i + 1 };
  let view = "";
  const starts: number[] = [];
  const ends: number[] = [];
  const literal = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      view += text[i];
      starts.push(i);
      ends.push(i + 1);
    }
  };
  let at = 0;
  for (const m of text.matchAll(ESCAPED)) {
    const [whole, , unicode, char, percent] = m;
    const code = unicode !== undefined ? parseInt(unicode, 16) : percent !== undefined ? parseInt(percent, 16) : undefined;
    if (percent !== undefined && code! >= 0x80) continue;
    literal(at, m.index);
    view += code !== undefined ? String.fromCharCode(code) : char;
    starts.push(m.index);
    ends.push(m.index + whole.length);
    at = m.index + whole.length;
  }
  literal(at, text.length);
  return { text: view, start: (i) => starts[i]!, end: (i) => ends[i]! };
}

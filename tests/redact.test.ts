import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { jitConfigSecrets, registerJitConfig } from "../lib/github/jit-config.ts";
import { createLogger } from "../lib/core/log.ts";
import { MIN_FRAGMENT_LENGTH, redact, registerSecret } from "../lib/core/redact.ts";

// Each test registers its own values: the registry is process-wide by design.
const fresh = (label: string) => `${label}-${randomBytes(12).toString("hex")}`;
const b64 = (text: string) => Buffer.from(text).toString("base64");

const ghsStateless =
  "ghs_123456_eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiIxMjM0NTYiLCJleHAiOjE3OTk5OTk5OTl9.Zm9vYmFyYmF6cXV4c2lnbmF0dXJlLXBhcnQ";
const githubTokens = {
  ghp: "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
  gho: "gho_16C7e42F292c6912E7710c838347Ae178B4a",
  ghu: "ghu_16C7e42F292c6912E7710c838347Ae178B4a",
  ghs: "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
  ghr: "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1ccbF66C46812d16D5B1A9Dc86A1498",
  github_pat: "github_pat_11ABCDEFG0123456789abc_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU",
  "ghs_APPID_JWT": ghsStateless,
};
const jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDAsImlzcyI6IjEyMyJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
const pemBody = "MIIEowIBAAKCAQEAx7Jk2vQ9c1bB3t5Yb0Qm\nq8vTn4Lw7Zr2Kp1Hc3Xa9Df6Gh0Jk5Lm2Nb8Vc\n";
const pem = `-----BEGIN RSA PRIVATE KEY-----\n${pemBody}-----END RSA PRIVATE KEY-----`;

describe("shaped secrets", () => {
  for (const [kind, token] of Object.entries(githubTokens)) {
    test(`GitHub ${kind} token`, () => {
      const out = redact(`auth with ${token} failed`);
      expect(out).toBe("auth with [REDACTED:github-token] failed");
    });
  }

  test("a GitHub token right after an escaped newline", () => {
    expect(redact(String.raw`line one\n${githubTokens.ghs}`)).toBe(String.raw`line one\n[REDACTED:github-token]`);
  });

  test("JWT", () => {
    expect(redact(`jwt=${jwt} next`)).toBe("jwt=[REDACTED:jwt] next");
  });

  test("PEM private key with real newlines, escaped newlines, and truncated", () => {
    expect(redact(`key: ${pem} end`)).toBe("key: [REDACTED:private-key] end");
    const escaped = JSON.stringify({ key: pem, after: "kept" });
    expect(JSON.parse(redact(escaped))).toEqual({ key: "[REDACTED:private-key]", after: "kept" });
    const openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\\n-----END OPENSSH PRIVATE KEY-----";
    expect(redact(`k=${openssh} x=1`)).toBe("k=[REDACTED:private-key] x=1");
    const pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF1xAbCBCAC7\n=AbCd\n-----END PGP PRIVATE KEY BLOCK-----";
    expect(redact(`gpg ${pgp}.`)).toBe("gpg [REDACTED:private-key].");
    const truncated = JSON.stringify({ key: `-----BEGIN PRIVATE KEY-----\n${pemBody}`, n: 1 });
    expect(JSON.parse(redact(truncated))).toEqual({ key: "[REDACTED:private-key]", n: 1 });
  });

  test("Authorization header values keep the scheme", () => {
    expect(redact("Authorization: token abc123def456")).toBe("Authorization: token [REDACTED]");
    expect(redact("authorization: Bearer abc123def456")).toBe("authorization: Bearer [REDACTED]");
    expect(redact("Proxy-Authorization: Basic dXNlcjpwYXNz")).toBe("Proxy-Authorization: Basic [REDACTED]");
    const headers = JSON.stringify({ headers: { authorization: "token abc123def456", accept: "application/json" } });
    expect(JSON.parse(redact(headers))).toEqual({ headers: { authorization: "token [REDACTED]", accept: "application/json" } });
  });

  test("Bearer anywhere, and token followed by something credential-shaped", () => {
    expect(redact("sent Bearer abcdefgh1234")).toBe("sent Bearer [REDACTED]");
    expect(redact("using token AABF3JGZDX3P5PMEXLND6TS6FCWO6")).toBe("using token [REDACTED]");
  });

  test("password in a URL", () => {
    expect(redact("pull https://ci:hunter2hunter2@registry.example.com/v2/")).toBe(
      "pull https://ci:[REDACTED]@registry.example.com/v2/",
    );
  });

  test("values of keys that name a secret, in JSON, nested JSON, text, env and flags", () => {
    const json = JSON.stringify({ token: "s3cr3t", password: "pw with spaces", token_path: "/Users/a/.config/macos-runner/token" });
    expect(JSON.parse(redact(json))).toEqual({ token: "[REDACTED]", password: "[REDACTED]", token_path: "/Users/a/.config/macos-runner/token" });
    const nested = JSON.stringify({ body: JSON.stringify({ registration_token: "abc", ok: true }) });
    expect(JSON.parse(JSON.parse(redact(nested)).body)).toEqual({ registration_token: "[REDACTED]", ok: true });
    expect(redact('password="a b" user=ci')).toBe('password="[REDACTED]" user=ci');
    expect(redact("ACTIONS_RUNNER_INPUT_JITCONFIG=abc GITHUB_TOKEN=def HOME=/Users/admin")).toBe(
      "ACTIONS_RUNNER_INPUT_JITCONFIG=[REDACTED] GITHUB_TOKEN=[REDACTED] HOME=/Users/admin",
    );
    expect(redact("GET /runners?token=abc&page=2")).toBe("GET /runners?token=[REDACTED]&page=2");
    expect(redact("./config.sh remove --token AAAA1 && ./run.sh --jitconfig=xyz")).toBe(
      "./config.sh remove --token [REDACTED] && ./run.sh --jitconfig=[REDACTED]",
    );
  });
});

describe("registered secrets", () => {
  test("raw, trimmed, base64, base64url and URL-encoded forms", () => {
    const secret = `${fresh("pw")}/+?&= é`;
    registerSecret(`${secret}\n`);
    expect(redact(`a ${secret} b`)).toBe("a [REDACTED] b");
    expect(redact(`a ${Buffer.from(secret).toString("base64")} b`)).toBe("a [REDACTED] b");
    expect(redact(`a ${Buffer.from(secret).toString("base64url")} b`)).toBe("a [REDACTED] b");
    expect(redact(`a ${encodeURIComponent(secret)} b`)).toBe("a [REDACTED] b");
  });

  test("a JIT config is caught encoded, decoded, and as escaped in a JSON line", () => {
    const credentials = Buffer.from(JSON.stringify({ scheme: "OAuth", data: { token: fresh("t") } })).toString("base64");
    const decoded = JSON.stringify({ ".runner": "e30=", ".credentials": credentials });
    const jit = Buffer.from(decoded).toString("base64");
    registerSecret(jit);
    expect(redact(`jit ${jit}`)).toBe("jit [REDACTED]");
    expect(redact(`jit ${encodeURIComponent(jit)}`)).toBe("jit [REDACTED]");
    expect(redact(`decoded ${decoded}`)).toBe("decoded [REDACTED]");
    expect(JSON.parse(redact(JSON.stringify({ msg: decoded })))).toEqual({ msg: "[REDACTED]" });
  });

  test("each file a JIT config carries is caught on its own, encoded and decoded", () => {
    const credentials = JSON.stringify({ scheme: "OAuth", data: { clientId: fresh("client"), authorizationUrl: "https://pipelines.actions.example/auth" } });
    const rsaParams = JSON.stringify({ d: randomBytes(32).toString("base64"), exponent: "AQAB" });
    const files = { ".runner": b64(JSON.stringify({ agentName: "acme-mac-mini-07-1-k3x9q2" })), ".credentials": b64(credentials), ".credentials_rsaparams": b64(rsaParams) };
    registerSecret(b64(JSON.stringify(files)));
    expect(redact(`wrote ${files[".credentials"]}`)).toBe("wrote [REDACTED]");
    expect(redact(`read ${credentials}`)).toBe("read [REDACTED]");
    expect(redact(`rsa ${files[".credentials_rsaparams"]} and ${rsaParams}`)).toBe("rsa [REDACTED] and [REDACTED]");
    // The parts are matched whole only: the runner's name on its own is not a secret.
    expect(redact("runner acme-mac-mini-07-1-k3x9q2 online")).toBe("runner acme-mac-mini-07-1-k3x9q2 online");
  });

  test("a secret with quotes and a newline is caught as the JSON and text lines escape it", () => {
    const secret = `${fresh("q")}"\nend`;
    registerSecret(secret);
    const json = JSON.stringify(secret).slice(1, -1);
    expect(redact(`{"x":"${json}"}`)).toBe('{"x":"[REDACTED]"}');
    expect(redact(json.replaceAll('\\"', '"'))).toBe("[REDACTED]");
  });

  test("values shorter than 8 characters are ignored", () => {
    registerSecret("admin");
    registerSecret("       ");
    expect(redact("user admin logged in")).toBe("user admin logged in");
  });
});

/** A JIT config shaped as GitHub issues it, with a 2048-bit key's RSA parameters (random bytes of the real sizes). */
function jitConfig() {
  const name = `acme-mac-mini-07-1-${randomBytes(4).toString("hex")}`;
  const runner = {
    agentId: 4711, agentName: name, poolId: 1, poolName: "Default",
    serverUrl: "https://pipelinesghubeus23.actions.githubusercontent.com/Qx7VbN3kLm9PzR2sT5wY8aC1dF4gH6jK/",
    gitHubUrl: "https://github.com/acme", workFolder: "/Users/admin/actions-runner/_work", ephemeral: true, disableUpdate: false,
  };
  const credentials = {
    scheme: "OAuth",
    data: {
      clientId: crypto.randomUUID(),
      authorizationUrl: "https://vstoken.actions.githubusercontent.com/_apis/oauth2/token/4e1c7a1b-2f3d-4c5b-9a8e-7d6c5b4a3f21",
      requireFipsCryptography: "True",
      token: randomBytes(30).toString("base64url"),
    },
  };
  const bytes = (n: number) => randomBytes(n).toString("base64");
  // `d` holds "+/+/" (bytes fb ff bf) at a known place, so its escaped forms differ from the raw one.
  const d = Buffer.concat([randomBytes(30), Buffer.from([0xfb, 0xff, 0xbf]), randomBytes(223)]).toString("base64");
  const rsa = { d, dp: bytes(128), dq: bytes(128), exponent: "AQAB", inverseQ: bytes(128), modulus: bytes(256), p: bytes(128), q: bytes(128) };
  const files = { ".runner": b64(JSON.stringify(runner)), ".credentials": b64(JSON.stringify(credentials)), ".credentials_rsaparams": b64(JSON.stringify(rsa)) };
  const inner = { ...rsa, clientId: credentials.data.clientId, token: credentials.data.token };
  return { encoded: b64(JSON.stringify(files)), runner, credentials, rsa, inner };
}

/** The pieces of a secret a runner may print: whole, a 43-character prefix, a middle piece, the last 24 characters. */
function piecesOf(secret: string): Record<string, string> {
  const middle = Math.floor(secret.length / 2) - 15;
  return { whole: secret, prefix43: secret.slice(0, 43), middle30: secret.slice(middle, middle + 30), last24: secret.slice(-MIN_FRAGMENT_LENGTH) };
}

describe("the secrets inside a JIT config, whole and in part", () => {
  const jit = jitConfig();
  registerJitConfig(jit.encoded);
  const secrets = Object.entries(jit.inner).filter(([field]) => field !== "exponent");

  test("every RSA parameter, the OAuth client id and token are found inside; no field of .runner is", () => {
    const found = jitConfigSecrets(jit.encoded);
    for (const [, value] of secrets) expect(found).toContain(value);
    for (const value of Object.values(jit.runner)) expect(found).not.toContain(value);
    expect(found).not.toContain(jit.credentials.data.authorizationUrl);
  });

  for (const [field, secret] of secrets) {
    test(`${field}: whole, a 43-character prefix, a middle piece and the last 24 characters are scrubbed`, () => {
      for (const [kind, piece] of Object.entries(piecesOf(secret))) {
        const out = redact(`debug: runner secret ${piece} (${kind})`);
        expect(out).toBe(`debug: runner secret [REDACTED] (${kind})`);
      }
    });
  }

  test("a piece glued to other text is cut out to its full extent, the rest kept", () => {
    const piece = jit.rsa.dp.slice(10, 60);
    expect(redact(`rsa=>${piece}<=end`)).toBe("rsa=>[REDACTED]<=end");
    expect(redact(`${jit.rsa.p.slice(0, 40)}${jit.rsa.q.slice(5, 45)}`)).toBe("[REDACTED]");
  });

  test("escaped as JSON (\\/, \\u002B, nested JSON) and URL-encoded, the piece is still scrubbed", () => {
    const at = jit.rsa.d.indexOf("+/+/");
    const piece = jit.rsa.d.slice(at - 20, at + 20);
    expect(piece).toContain("/");
    const forms = [
      piece.replaceAll("/", "\\/"),
      piece.replaceAll("+", "\\u002B"),
      JSON.stringify(JSON.stringify(piece.replaceAll("/", "\\/")).slice(1, -1)).slice(1, -1),
      encodeURIComponent(piece),
    ];
    for (const form of forms) {
      expect(form).not.toBe(piece);
      expect(redact(`key ${form} end`)).toBe("key [REDACTED] end");
    }
  });

  test("23 characters of a secret are not a secret; the runner's name, group, URLs and work folder stay readable", () => {
    const piece23 = jit.rsa.d.slice(100, 100 + MIN_FRAGMENT_LENGTH - 1);
    expect(redact(`short ${piece23} piece`)).toBe(`short ${piece23} piece`);
    const ordinary = [
      `runner ${jit.runner.agentName} in group ${jit.runner.poolName} (id ${jit.runner.agentId})`,
      `connecting to ${jit.runner.serverUrl} for ${jit.runner.gitHubUrl}`,
      `work folder ${jit.runner.workFolder}`,
      `token from ${jit.credentials.data.authorizationUrl}`,
    ];
    for (const text of ordinary) expect(redact(text)).toBe(text);
  });

  test("a JSON line and a text line with every kind of piece stay valid and hold none of them", () => {
    for (const format of ["json", "text"] as const) {
      let text = "";
      const stream = new Writable({ write: (chunk, _e, done) => ((text += String(chunk)), done()) });
      const log = createLogger({ stream, format });
      const pieces = secrets.flatMap(([, s]) => Object.values(piecesOf(s)));
      log.info("guest.output", `printed "${pieces.join('" and "')}"\tdone`, { stream: "stderr", escaped: pieces.map((p) => p.replaceAll("/", "\\/")) });
      const line = text.trimEnd();
      expect(line.split("\n")).toHaveLength(1);
      if (format === "json") {
        const parsed = JSON.parse(line);
        expect(parsed.msg).toStartWith('printed "[REDACTED]" and "[REDACTED]"');
        expect(parsed.escaped).toEqual(pieces.map(() => "[REDACTED]"));
      }
      for (const p of pieces) for (let i = 0; i + MIN_FRAGMENT_LENGTH <= p.length; i++) expect(line).not.toContain(p.slice(i, i + MIN_FRAGMENT_LENGTH));
    }
  });

  test("a JIT config that does not decode is registered whole, without failing", () => {
    const garbage = `not-a-jit-config-${randomBytes(8).toString("hex")}`;
    expect(jitConfigSecrets(garbage)).toEqual([]);
    registerJitConfig(garbage);
    expect(redact(`got ${garbage}`)).toBe("got [REDACTED]");
  });
});

const SHA = "3f786850e387550fdab836ed7e6dc881de23001b";
const HEX64 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const URL_WITH_QUERY =
  "https://github.com/acme/app/actions/runs/1234567890/job/98765432101?pr=42&check_suite_focus=true#step:4:17";

describe("a git SHA and a URL survive while every registered secret is removed", () => {
  test("in one line with the secrets in every form", () => {
    const password = `${fresh("registry")}+/=`;
    const pat = fresh("pat");
    const installationToken = `v1.${randomBytes(20).toString("hex")}`;
    const jit = b64(JSON.stringify({ ".runner": b64("{}"), ".credentials": b64(JSON.stringify({ token: fresh("oauth") })) }));
    for (const v of [password, pat, installationToken, jit]) registerSecret(v);
    const line = [
      `checkout ${SHA} from ${URL_WITH_QUERY}`,
      `password ${password} basic ${b64(password)} url ${encodeURIComponent(password)} json ${JSON.stringify(password)}`,
      `pat ${pat} token ${b64(pat)}`,
      `installation ${installationToken}`,
      `jit ${jit} ${encodeURIComponent(jit)}`,
      `pinned sha256:${HEX64} layer ${HEX64}`,
    ].join("\n");
    expect(redact(line)).toBe(
      [
        `checkout ${SHA} from ${URL_WITH_QUERY}`,
        'password [REDACTED] basic [REDACTED] url [REDACTED] json "[REDACTED]"',
        "pat [REDACTED] token [REDACTED]",
        "installation [REDACTED]",
        "jit [REDACTED] [REDACTED]",
        `pinned sha256:${HEX64} layer ${HEX64}`,
      ].join("\n"),
    );
  });
});

describe("ordinary content survives", () => {
  const ordinary = [
    SHA,
    `HEAD is now at ${SHA.slice(0, 7)} Bump runner; checking out ${SHA} as refs/pull/42/merge`,
    `git fetch origin +${SHA}:refs/remotes/pull/42/merge`,
    HEX64,
    `layer ${HEX64} pushed; config ${HEX64.slice(0, 40)}`,
    `http://127.0.0.1:5000/v2/macos-runner/blobs/sha256:${HEX64}`,
    URL_WITH_QUERY,
    "https://github.com/actions/runner/releases/download/v2.330.0/actions-runner-osx-arm64-2.330.0.tar.gz",
    "https://api.github.com/repos/acme/app/actions/runners?per_page=100&page=2&name=acme-mac-mini-07-1-k3x9q2",
    "https://registry.example.com/v2/_catalog?n=100&last=macos-runner%2Fsequoia-xcode16",
    "/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T/TemporaryItems/NSIRD_screencaptureui_Q1wErT",
    "/private/var/folders/7p/9rt0m1xn3kq5g2h8vwzs4l0c0000gn/T/tmp.Xq3vB9kLmN/actions-runner/_diag/Runner_20261128-063000-utc.log",
    "/var/folders/7p/9rt0m1xn3kq5g2h8vwzs4l0c0000gn/T/bun-build-1a2B3c4D5e6F7g8H9i0JkLmN",
    "macos-runner-mini-07-1-Zk9xR2tLbTNQcVd6VjhuQjFoWTVjRDdlRzBqUzRhTnU",
    "acme-mac-mini-07-1-k3x9q2",
    "2026-11-28 06:30:00Z: Running job: build (macos-15, xcode-16) on acme-mac-mini-07-2-a1b2c3d4",
    "macos-runner-host-1-a1b2c3",
    "acme-mac-builder-host-01-slot-2-a1b2c3d4e5f6",
    "2026-11-28T06:30:00.123Z",
    "2026-09-16 15:14:46Z: Listening for Jobs",
    `sha256:${"0123456789abcdef".repeat(4)}`,
    `registry.example.com/macos-runner@sha256:${"a1b2c3d4e5f60718".repeat(4)}`,
    "/Users/admin/Library/Application Support/macos-runner/slot-1/state.json",
    "/Users/admin/Library/LaunchAgents/com.github.macos-runner.slot-1.plist",
    "/opt/homebrew/var/node_exporter/textfile/macos_runner_slot_1.prom",
    "/private/var/folders/3h/0k7lvp4j6j3bq3q8l7g8kz8w0000gn/T/macos-runner-test-1234/sim",
    "/Applications/Xcode_16.2.app/Contents/Developer/Platforms/iPhoneOS.platform/Developer",
    "192.168.64.5 127.0.0.2:22 fe80::1",
    "https://github.com/acme/app/actions/runs/1234567890/job/98765432101",
    "https://ghe.example.com/api/v3/orgs/acme/actions/runners?name=acme-mac-host-1-1-a1b2c3",
    "https://api.github.com/repos/acme/app/actions/runners/generate-jitconfig",
    "ACTIONS_RUNNER_INPUT_JITCONFIG is read from the environment",
    "123e4567-e89b-12d3-a456-426614174000",
    "installation token refreshed 300s before expiry; token expired",
    "token_path=/Users/admin/.config/macos-runner/token password_path=/Users/admin/.config/macos-runner/registry-password",
    "tart login registry.example.com --username ci --password-stdin",
    "tart clone ghcr.io/cirruslabs/macos-sequoia-xcode:16.2 macos-runner-host-1-a1b2c3",
    "connect ECONNREFUSED 127.0.0.1:8443",
    "HTTP 401 Bad credentials; Authorization failed for runner 42",
  ];
  for (const text of ordinary) {
    test(text, () => {
      expect(redact(text)).toBe(text);
    });
  }

  test("empty text", () => {
    expect(redact("")).toBe("");
  });
});

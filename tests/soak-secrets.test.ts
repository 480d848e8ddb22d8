// The soak's secret scan finds any 24 characters of a JIT config's inner
// secrets, raw or as a JSON line escapes them, and nothing shorter.
import { expect, test } from "bun:test";
import { randomBytes, randomUUID } from "node:crypto";
import { SecretWatch } from "../bench/soak/secrets.ts";

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64");

test("24 characters of a JIT config's RSA key or OAuth secrets are a leak, raw or JSON-escaped; 23 are not", () => {
  const d = Buffer.concat([randomBytes(30), Buffer.from([0xfb, 0xff, 0xbf]), randomBytes(30)]).toString("base64");
  const clientId = randomUUID();
  const token = randomBytes(30).toString("base64url");
  const encoded = b64({
    ".runner": b64({ agentName: "soak-host-1-abcdefabcdefabcdef", serverUrl: "http://127.0.0.1:1234" }),
    ".credentials": b64({ scheme: "OAuth", data: { clientId, authorizationUrl: "http://127.0.0.1:1234/_broker/oauth2/token", token } }),
    ".credentials_rsaparams": b64({ d, exponent: "AQAB" }),
  });
  const watch = new SecretWatch();
  watch.addJitConfig(encoded);
  const at = d.indexOf("+/+/");
  expect(watch.find(`debug: ${d.slice(at - 10, at + 14)} end`)).toEqual(["JIT RSA parameter d (24+ characters)"]);
  expect(watch.find(JSON.stringify({ msg: `x ${d.slice(at - 10, at + 14).replaceAll("/", "\\/")}` }))).toEqual(["JIT RSA parameter d (24+ characters)"]);
  expect(watch.find(`client ${clientId}`)).toEqual(["JIT OAuth client id (24+ characters)"]);
  expect(watch.find(`t=${token.slice(3, 27)}`)).toEqual(["JIT OAuth token (24+ characters)"]);
  expect(watch.find(`short ${d.slice(0, 23)} and ${token.slice(0, 23)}`)).toEqual([]);
  expect(watch.find("runner soak-host-1-abcdefabcdefabcdef at http://127.0.0.1:1234/_broker/oauth2/token: [REDACTED]")).toEqual([]);
});

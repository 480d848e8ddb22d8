// Runs sim/github on its own for manual poking: prints its URL and the
// credentials to use, serves until interrupted.
import { startGitHub } from "./server.ts";

const port = process.argv[2] ? Number(process.argv[2]) : undefined;
if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536)) {
  process.stderr.write(`usage: bun sim/github/main.ts [PORT]  (got port '${process.argv[2]}')\n`);
  process.exit(64);
}
const sim = await startGitHub({ port, validate: process.env.SIM_GITHUB_VALIDATE === "1" });
process.stdout.write(`${sim.url}\n`);
process.stderr.write(
  [
    `sim/github listening on ${sim.url}`,
    `  PAT:           ${sim.pat}`,
    `  app id:        ${sim.app.id} (client id ${sim.app.clientId}); key: curl ${sim.url}/_sim/info`,
    `  installations: ${sim.app.installations.map((i) => `${i.account}=${i.id}`).join(", ")}`,
    `  state:         curl ${sim.url}/_sim/state`,
    "",
  ].join("\n"),
);
const stop = () => void sim.stop().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);

// The actions runner's status lines (contracts/github.md §4): run.sh's exit
// status says nothing about the job; these lines do.
export type RunnerEvent =
  | { kind: "connected" }
  | { kind: "listening" }
  | { kind: "job-started"; job: string }
  | { kind: "job-completed"; job: string; result: string }
  | { kind: "runner-gone" }
  | { kind: "session-conflict" };

const TS = String.raw`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z: `;
const PATTERNS: [RegExp, (m: RegExpMatchArray) => RunnerEvent][] = [
  [/^√ Connected to GitHub$/, () => ({ kind: "connected" })],
  [new RegExp(`^${TS}Listening for Jobs$`), () => ({ kind: "listening" })],
  [new RegExp(`^${TS}Running job: (.+)$`), (m) => ({ kind: "job-started", job: m[1]! })],
  [new RegExp(`^${TS}Job (.+) completed with result: (\\w+)$`), (m) => ({ kind: "job-completed", job: m[1]!, result: m[2]! })],
  [/The runner no longer exists on the server/, () => ({ kind: "runner-gone" })],
  [/A session for this runner already exists/, () => ({ kind: "session-conflict" })],
];

export function parseRunnerLine(line: string): RunnerEvent | undefined {
  const text = line.trimEnd();
  for (const [re, make] of PATTERNS) {
    const m = text.match(re);
    if (m) return make(m);
  }
  return undefined;
}

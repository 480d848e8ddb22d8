// Loaded before every test file (bunfig.toml). Hooks (beforeAll: a world with
// a registry, an image built and pushed) get the tests' 60 s, not Bun's 5 s
// for hooks, which a busy machine overruns.
import { setDefaultTimeout } from "bun:test";

setDefaultTimeout(60_000);

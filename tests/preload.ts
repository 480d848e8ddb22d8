// Loaded before every test file (bunfig.toml): tests and hooks (beforeAll: a
// world with a registry, an image built and pushed) get 60 s unless they say
// otherwise. Without it they get Bun's 5 s (Bun 1.4 ignores bunfig's
// `timeout`), which a busy machine overruns.
import { setDefaultTimeout } from "bun:test";

setDefaultTimeout(60_000);

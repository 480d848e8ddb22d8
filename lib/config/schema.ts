// Every config key in the YAML's snake_case, transformed into the camelCase
// `Config`; the descriptions become docs/config.schema.json.
import { describeValue, z } from "../core/schema/index.ts";
import {
  appPrivateKeyFile, attempt, commandPath, converted, defaultApiUrl, duration, existingFile, expandPath, flag, integer, Invalid, labels, matching,
  numberIn, omittable, oneOf, parseApiUrl, parseGithubUrl, secretFile, section, text, whenMapping, type GithubTarget, type PathBase,
} from "./values.ts";

export interface ConfigSource {
  file: string;
  base: PathBase;
}

export function configSchema(src: ConfigSource) {
  const { base } = src;
  const path = (o: { required?: string } = {}) => converted((s) => expandPath(s, base), o);
  const secret = (o: { required?: string } = {}) => converted((s) => secretFile(s, base), o);

  const dirUnderHome = (key: string, fallback: string) =>
    text()
      .meta({ default: fallback })
      .optional()
      .transform((s, ctx) =>
        attempt(ctx, s, (given) => {
          if (given !== undefined) return expandPath(given, base);
          if (!base.home) throw new Invalid(`defaults to ${fallback}, but HOME is not set; set HOME or give ${key} as an absolute path`);
          return expandPath(fallback, base);
        }),
      );

  const github = section({
    url: converted(parseGithubUrl, {
      required: "e.g. https://github.com/acme (org), https://github.com/acme/app (repo) or https://github.com/enterprises/acme",
    }).meta({
      description: "Where runners register: https://HOST/ORG (an organization), https://HOST/OWNER/REPO (a repository) or https://HOST/enterprises/NAME (an enterprise).",
    }),
    api_url: converted(parseApiUrl)
      .optional()
      .meta({ description: "The REST API. Default: https://api.github.com for github.com, https://api.SUB.ghe.com for SUB.ghe.com, else https://HOST/api/v3 (GitHub Enterprise Server)." }),
    app: section({
      id: integer({ min: 1, required: "the GitHub App's numeric id" }).meta({ description: "The GitHub App's id (its settings page: App ID)." }),
      installation_id: integer({ min: 1 }).optional().meta({ description: "The App's installation on the org or repo. Default: looked up once and cached." }),
      private_key_path: converted((s) => appPrivateKeyFile(s, base), { required: "the App's private key file (.pem)" }).meta({
        description: "The App's private key (PEM, RSA), mode 0600.",
      }),
    })
      .optional()
      .meta({ description: "Authenticate as a GitHub App (organization and repository runners). Set this or token_path." }),
    token_path: secret()
      .optional()
      .meta({ description: "A file (mode 0600) holding a personal access token; needed for enterprise runners (classic PAT, manage_runners:enterprise). Set this or app." }),
  }).superRefine((g, ctx) => {
    const hasApp = g.app !== undefined;
    const hasToken = g.token_path !== undefined;
    if (hasApp && hasToken) ctx.addIssue({ code: "custom", path: ["token_path"], message: "set either github.app or github.token_path, not both" });
    if (!hasApp && !hasToken) ctx.addIssue({ code: "custom", message: "needs github.app (a GitHub App: id and private_key_path) or github.token_path (a file holding a PAT)" });
    // GitHub does not enable the enterprise runner endpoints for GitHub Apps.
    if (hasApp && targetOf(g.url)?.scope.kind === "enterprise") {
      ctx.addIssue({ code: "custom", path: ["app"], message: "GitHub Apps cannot manage enterprise runners; use github.token_path with a classic PAT (scope manage_runners:enterprise)" });
    }
  }, whenMapping);

  const runner = section({
    // Runner names are <prefix>-<host>-<slot>-<random> and GitHub caps names at 64.
    name_prefix: matching(
      /[A-Za-z0-9._-]{1,32}/,
      (got) => `must be 1 to 32 of A-Z a-z 0-9 . _ - (runner names are <prefix>-<host>-<slot>-<random>, at most 64 characters), got ${got}`,
    )
      .prefault("macos-runner")
      .meta({ description: "Runner names are <name_prefix>-<host>-<slot>-<random>." }),
    labels: labels()
      .prefault(["self-hosted", "macOS", "ARM64"])
      .meta({ description: "The runner's labels; jobs pick runners with runs-on. Case-insensitive, no commas." }),
    group: text().prefault("Default").meta({ description: "The runner group (organizations and enterprises only)." }),
    work_folder: text().prefault("_work").meta({ description: "The runner's work folder, relative to its directory in the VM." }),
    job_timeout: duration().prefault("6h").meta({ description: "A job still running after this is cancelled and its VM thrown away." }),
    listen_timeout: duration().prefault("2m").meta({ description: 'The runner must print "Listening for Jobs" within this after it starts.' }),
    exit_timeout: duration().prefault("1m").meta({ description: "After its job completed, the runner must exit within this." }),
  });

  const image = section({
    ref: matching(/\S+/, (got) => `must not contain spaces, got ${got}`, {
      required: "the golden VM image, e.g. registry.example.com/macos-runner:sequoia, or a local VM name",
    }).meta({ description: "The golden VM image: an OCI reference, or the name of a local tart VM.", examples: ["registry.example.com/macos-runner:sequoia-xcode16"] }),
    insecure: flag().prefault(false).meta({ description: "The registry speaks plain HTTP." }),
    username: text().optional().meta({ description: "Registry user; goes with password_path." }),
    password_path: secret().optional().meta({ description: "A file (mode 0600) holding the registry password; goes with username." }),
    min_free_gb: integer({ min: 0 })
      .optional()
      .meta({ description: "Free disk space (GB) pull keeps; it refuses to pull below it. Default: the image's size + 20 GB." }),
    pull_interval: duration().prefault("5m").meta({ description: "How often the pull agent checks the registry for a new image (at least 1m: launchd starts pull on this interval)." }),
    runner_releases_url: converted(parseApiUrl)
      .prefault("https://api.github.com/repos/actions/runner/releases")
      .meta({ description: "The actions/runner releases on the GitHub API: how far the baked runner is behind, for `pull --runner-check`, `doctor` and `selftest`." }),
  }).superRefine((i, ctx) => {
    // launchd's StartInterval is whole seconds; under a minute a pull would still be running.
    if (i.pull_interval < 60_000) ctx.addIssue({ code: "custom", path: ["pull_interval"], message: "must be at least 1m (launchd starts pull on this interval)" });
    if ((i.username !== undefined) !== (i.password_path !== undefined)) {
      const given = i.username !== undefined ? "username" : "password_path";
      ctx.addIssue({ code: "custom", path: [given], message: "image.username and image.password_path go together; set both or neither" });
    }
  }, whenMapping);

  const ssh = section({
    user: matching(/\S+/, (got) => `must not contain spaces, got ${got}`)
      .prefault("admin")
      .meta({ description: "The user the golden image authorises the key for." }),
    port: integer({ min: 1, max: 65535 }).prefault(22).meta({ description: "The guest's SSH port." }),
    private_key_path: secret({ required: "the private key whose public half the golden image authorises" }).meta({
      description: "The SSH private key (mode 0600) whose public half the golden image authorises.",
    }),
    known_hosts_path: converted((s) => existingFile(s, base), { required: "a known_hosts file holding the golden image's host key" }).meta({
      description: "A known_hosts file with the golden image's host key under the alias macos-runner-guest.",
    }),
  });

  const vm = section({
    cpu: integer({ min: 1 }).optional().meta({ description: "CPUs per VM. Default: as the golden image has it." }),
    memory_mb: integer({ min: 1 }).optional().meta({ description: "Memory per VM in MB. Default: as the golden image has it." }),
    boot_timeout: duration({ max: { ms: 65_535_000, why: "tart ip --wait takes at most 65535 seconds" } })
      .prefault("3m")
      .meta({ description: "The VM must start and answer on its transport (guest agent or SSH) within this after it starts; at most 18h12m15s (tart ip --wait)." }),
    start: oneOf(["cold", "snapshot"])
      .prefault("cold")
      .meta({ description: "How VMs start: cold boots the clone; snapshot resumes a suspended golden image (opt-in)." }),
    next_vm_max_age: duration()
      .optional()
      .meta({ description: "The next VM (cloned, and maybe booted, ahead of its cycle) is deleted instead of used once it is older than this. Default: 1h." }),
    preclone_max_age: duration()
      .optional()
      .meta({ description: "The old name of next_vm_max_age, still read.", deprecated: true }),
    reuse_idle: flag()
      .prefault(true)
      .meta({ description: "When GitHub retires a runner before any job reached it, start a new runner in the same VM (it never ran a job) instead of a new VM. false: a new VM each time." }),
    idle_reuse_max: duration()
      .prefault("1h")
      .meta({ description: "A VM kept for new runners while no job comes is replaced by a fresh one once it has been up this long (and at once when a new image is pinned)." }),
    transport: oneOf(["exec", "ssh"])
      .prefault("exec")
      .meta({ description: "How commands reach the guest: exec uses `tart exec` and the tart guest agent (no network, so no Local Network grant); ssh uses /usr/bin/ssh to the guest's address (needs the Local Network grant for the slot agents)." }),
    ssh: ssh.optional().meta({ description: "How to reach the guest over SSH: required with vm.transport: ssh; with exec, optional (selftest then also tries ssh, doctor checks the key files)." }),
  })
    .superRefine((v, ctx) => {
      if (v.next_vm_max_age !== undefined && v.preclone_max_age !== undefined) {
        ctx.addIssue({ code: "custom", path: ["preclone_max_age"], message: "is the old name of vm.next_vm_max_age, which is set too; remove preclone_max_age" });
      }
      if (v.transport === "ssh" && v.ssh === undefined) {
        ctx.addIssue({ code: "custom", path: ["transport"], message: "ssh needs a vm.ssh section with private_key_path (the private key whose public half the golden image authorises) and known_hosts_path (a known_hosts file holding the golden image's host key)" });
      }
    }, whenMapping)
    .meta({ if: { properties: { transport: { const: "ssh" } }, required: ["transport"] }, then: { required: ["ssh"] } });

  const host = section({
    id: matching(/[a-z0-9-]{1,32}/, (got) => `must be 1 to 32 of a-z 0-9 - (the host part of VM and runner names), got ${got}`)
      .optional()
      .meta({ description: "The host part of VM and runner names, unique per host. Default: the first 8 hex digits of the Mac's hardware UUID, taken on first launch and kept in state_dir, so a hostname change orphans nothing." }),
    slots: numberIn([1, 2], "1 or 2 (Apple's macOS licence allows at most 2 macOS VMs per host)")
      .prefault(2)
      .meta({ description: "VM slots on this host: 1 or 2 (Apple's macOS licence allows at most 2 macOS VMs per host)." }),
    tart_path: converted((s) => commandPath(s, base))
      .prefault("tart")
      .meta({ description: "The tart binary: a name looked up in the agents' PATH, or a path." }),
    state_dir: dirUnderHome("host.state_dir", "~/Library/Application Support/macos-runner").meta({
      description: "Slot state, locks and caches; the agents' working directory.",
    }),
    log_dir: dirUnderHome("host.log_dir", "~/Library/Logs/macos-runner").meta({ description: "Agent logs: slot-N.log, pull.log." }),
    dhcp_leases_path: path().prefault("/var/db/dhcpd_leases").meta({ description: "Where the VM's address is read from (macOS's DHCP server leases)." }),
    backoff_initial: duration()
      .prefault("10s")
      .meta({ description: "A failed cycle waits this long before it exits; the wait doubles with each failure in a row, up to backoff_max." }),
    backoff_max: duration().prefault("10m").meta({ description: "The longest wait after failed cycles (see backoff_initial)." }),
  }).superRefine((h, ctx) => {
    if (typeof h.backoff_initial === "number" && typeof h.backoff_max === "number" && h.backoff_max < h.backoff_initial) {
      ctx.addIssue({ code: "custom", path: ["backoff_max"], message: `must be at least host.backoff_initial (${h.backoff_initial} ms)` });
    }
  }, whenMapping);

  const metrics = section({
    textfile_dir: path({ required: "the node_exporter textfile collector directory" }).meta({ description: "node_exporter's textfile collector directory." }),
  });

  const sections = {
    github: omittable(github).meta({ description: "Where runners register and how to authenticate." }),
    runner: omittable(runner).meta({ description: "The GitHub Actions runner in each VM." }),
    image: omittable(image).meta({ description: "The golden VM image every VM is cloned from." }),
    vm: omittable(vm).meta({ description: "The VMs." }),
    host: omittable(host).meta({ description: "This Mac." }),
    metrics: metrics.optional().meta({ description: "Prometheus metrics through node_exporter's textfile collector." }),
  };
  const file = z
    .strictObject(sections, {
      error: (iss) => {
        if (iss.code !== "invalid_type") return undefined;
        if (iss.input === undefined) return "the file is empty; it needs at least the github: and image: sections";
        return `the top level must be a mapping of sections (${Object.keys(sections).join(":, ")}:), got ${describeValue(iss.input)}`;
      },
    })
    .superRefine((c, ctx) => {
      const runnerGroup = (c.runner as { group?: unknown } | undefined)?.group;
      if (targetOf(c.github?.url)?.scope.kind === "repo" && typeof runnerGroup === "string" && runnerGroup !== "Default") {
        ctx.addIssue({ code: "custom", path: ["runner", "group"], message: "a repository has no runner groups; remove runner.group (or set it to Default) for a repo URL" });
      }
    }, whenMapping)
    .meta({ required: ["github", "image"] });

  return file.transform(({ github: g, runner: r, image: i, vm: v, host: h, metrics: m }) => ({
    file: src.file,
    github: {
      url: g.url.url,
      apiUrl: g.api_url ?? defaultApiUrl(g.url.url),
      scope: g.url.scope,
      // The section's rules guarantee exactly one of app and token_path.
      auth: g.app
        ? { kind: "app" as const, appId: g.app.id, ...(g.app.installation_id !== undefined && { installationId: g.app.installation_id }), privateKeyPath: g.app.private_key_path }
        : { kind: "pat" as const, tokenPath: g.token_path! },
    },
    runner: {
      namePrefix: r.name_prefix,
      labels: r.labels,
      group: r.group,
      workFolder: r.work_folder,
      jobTimeoutMs: r.job_timeout,
      listenTimeoutMs: r.listen_timeout,
      exitTimeoutMs: r.exit_timeout,
    },
    image: {
      ref: i.ref,
      insecure: i.insecure,
      ...(i.username !== undefined && { username: i.username }),
      ...(i.password_path !== undefined && { passwordPath: i.password_path }),
      ...(i.min_free_gb !== undefined && { minFreeGb: i.min_free_gb }),
      pullIntervalMs: i.pull_interval,
      runnerReleasesUrl: i.runner_releases_url,
    },
    vm: {
      ...(v.cpu !== undefined && { cpu: v.cpu }),
      ...(v.memory_mb !== undefined && { memoryMb: v.memory_mb }),
      bootTimeoutMs: v.boot_timeout,
      start: v.start,
      transport: v.transport,
      nextVmMaxAgeMs: v.next_vm_max_age ?? v.preclone_max_age ?? 3_600_000,
      reuseIdle: v.reuse_idle,
      idleReuseMaxMs: v.idle_reuse_max,
      ...(v.ssh && { ssh: { user: v.ssh.user, port: v.ssh.port, privateKeyPath: v.ssh.private_key_path, knownHostsPath: v.ssh.known_hosts_path } }),
    },
    host: {
      ...(h.id !== undefined && { id: h.id }),
      slots: h.slots,
      tartPath: h.tart_path,
      stateDir: h.state_dir,
      logDir: h.log_dir,
      dhcpLeasesPath: h.dhcp_leases_path,
      backoffInitialMs: h.backoff_initial,
      backoffMaxMs: h.backoff_max,
    },
    ...(m && { metrics: { textfileDir: m.textfile_dir } }),
  }));
}

/** Cross-key rules see a key's raw value where it failed. */
function targetOf(url: unknown): GithubTarget | undefined {
  return typeof url === "object" && url !== null && "scope" in url ? (url as GithubTarget) : undefined;
}

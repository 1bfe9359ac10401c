// LiveUpdate: the seed's DeployUpdateService, made right. It verifies the
// signed manifest before anything else, downloads while the app is in use
// with the sha256 checksum the plugin checks natively, switches when the app
// goes to the background, and never tries a build that failed to start twice.
// A failed download is retried later, with a backoff.

import { readAtMost } from './body.js';
import { DeviceState, type KeyValueStorage } from './state.js';
import { filesFetcher } from './delta-source.js';
import { downloadOptions, type DownloadOptions } from './delta.js';
import { nativeFits, selectBuild, type Selection } from './release.js';
import { MAX_ACL_SIZE, MAX_LATEST_SIZE, parsePublicKey, verifyLatest, VerifyError, type BuildRef, type EnvelopeInput, type Latest, type Rule, type Trust } from './verify.js';

/** A bundle as @capgo/capacitor-updater describes it. */
export interface BundleInfo {
  id: string;
  version: string;
  status?: string; // "success" | "error" | "pending" | "downloading"
  checksum?: string;
  downloaded?: string;
}

/** The part of @capgo/capacitor-updater's CapacitorUpdater that LiveUpdate uses. */
export interface Updater {
  download(options: DownloadOptions): Promise<BundleInfo>;
  /** The installed plugin's version, as CapacitorUpdater.getPluginVersion(); without it LiveUpdate downloads zips checked by SHA-256. */
  getPluginVersion?(): Promise<{ version: string }>;
  set(options: { id: string }): Promise<unknown>;
  next(options: { id: string }): Promise<unknown>;
  notifyAppReady(): Promise<unknown>;
  current(): Promise<{ bundle: BundleInfo; native?: string }>;
  getDeviceId(): Promise<{ deviceId: string }>;
}

/** Registers a listener for the app's state, as App.addListener('appStateChange', l) of @capacitor/app. */
export type AppStateHook = (listener: (state: { isActive: boolean }) => void) => unknown;

export interface LiveUpdateOptions {
  /** The app's name in the store, such as "retailer". */
  app: string;
  /** The channel to follow until {@link LiveUpdate.setChannel} picks another; "production" if absent. */
  channel?: string;
  /** The pinned root key(s) that sign the ACL. */
  trust: Trust;
  updater: Updater;
  /**
   * The tracker (`deploy serve`), such as "https://deploy-api.example.com":
   * manifests come from GET /build/latest, bundles from /build/download,
   * and downloads are reported to /build/download/complete.
   */
  tracker?: string;
  /**
   * The CDN (or bucket) URL of the store, such as "https://cdn.example.com":
   * manifests and bundles are fetched from it directly. With a tracker too,
   * the tracker still gets the reports.
   */
  cdn?: string;
  /**
   * Where the anti-rollback state, failed builds, download backoff, the
   * channel set with setChannel() and the last file manifest are kept: @capacitor/preferences in an
   * app. It must outlive the app's process: in memory, a build the plugin
   * rolled back would be downloaded again at every start, and replay
   * protection would start over. MemoryStorage is for tests.
   */
  storage: KeyValueStorage;
  /** Checks for updates whenever the app becomes active, and switches when it goes to the background. */
  onAppStateChange?: AppStateHook;
  /** Switch to a downloaded update at once instead of when the app goes to the background. */
  applyImmediately?: boolean;
  /** Told about every step, for logs and analytics. */
  onEvent?: (event: LiveUpdateEvent) => void;
  fetch?: typeof globalThis.fetch;
  /** The clock, for manifest expiry and the download backoff; the system clock if absent. */
  now?: () => Date;
  /** Timeout of each request to the tracker or CDN, reading its answer included, in ms (default 20000). */
  timeoutMs?: number;
}

export type LiveUpdateEventType =
  | 'no_update' // nothing is published, or the tracker offers nothing
  | 'rejected' // the manifest failed verification (rule says why), or the tracker refused to serve it; nothing was downloaded
  | 'up_to_date' // the current bundle is the published build
  | 'skipped' // the build failed to start on this device (or the tracker blocks it), waits for a download retry, or needs a newer native app
  | 'downloading'
  | 'downloaded' // waiting for the app to go to the background
  | 'download_failed' // retried at a later check after a backoff; given up on after 6 attempts
  | 'applying' // set() called: the app reloads into the new bundle
  | 'applied' // the new bundle is running
  | 'rolled_back' // the new bundle did not start; the plugin went back
  | 'error'; // a request or plugin call failed, or the tracker URL is not a tracker's; the next check tries again

export interface LiveUpdateEvent {
  type: LiveUpdateEventType;
  message: string;
  build?: string; // build id
  version?: string;
  /** For "rejected" (through a tracker that refuses the manifest, when it names the rule); for "error" when a file manifest or patch was refused. */
  rule?: Rule;
}

/** Failed downloads of one build before LiveUpdate gives up on it and waits for another build. */
const MAX_DOWNLOAD_ATTEMPTS = 6;
const MINUTE = 60_000;
const MAX_RETRY_DELAY = 240 * MINUTE;

/** How long to wait after the nth failed download in a row: 1, 4, 16, 64 minutes, then 4 hours. */
const retryDelay = (n: number) => Math.min(MINUTE * 4 ** (n - 1), MAX_RETRY_DELAY);

interface Pending {
  ref: BuildRef;
  bundle: BundleInfo;
}

/**
 * Keeps an app on the latest verified build of its channel. Call start() as
 * early as possible at app start-up: it calls notifyAppReady(), without
 * which the plugin rolls a new bundle back after appReadyTimeout.
 */
export class LiveUpdate {
  private readonly app: string;
  /** The constructor's channel, followed while setChannel() has chosen none. */
  private readonly defaultChannel: string;
  /** The channel followed, once read from the storage. */
  private channel?: Promise<string>;
  /** The state of the device's bundles; anti-rollback state is per channel (rollbackState). */
  private readonly state: DeviceState;
  private readonly fetch: typeof globalThis.fetch;
  private active = true;
  private pending?: Pending;
  private running?: Promise<LiveUpdateEvent>;
  private deviceID?: string;
  private listener?: unknown;

  constructor(private readonly opts: LiveUpdateOptions) {
    this.app = checkName('app', opts.app);
    this.defaultChannel = checkName('channel', opts.channel ?? 'production');
    if (!opts.tracker && !opts.cdn) throw new Error('LiveUpdate needs a tracker URL or a CDN URL');
    const roots: unknown = opts.trust?.roots;
    if (!Array.isArray(roots) || roots.length === 0) throw new Error('LiveUpdate needs at least one root public key in trust.roots');
    // Fail now on a mistyped or missing key, saying which.
    roots.forEach((k: unknown, i) => {
      try {
        parsePublicKey(k as string);
      } catch (e) {
        throw new Error(`trust.roots[${i}]: ${errText(e)}`);
      }
    });
    // Required by the type; checked for callers in plain JavaScript.
    if (!opts.storage) {
      throw new Error(
        'LiveUpdate needs storage: a key-value store that survives restarts, such as @capacitor/preferences (see docs/client.md); ' +
          'without one a rolled-back build is downloaded again at every start. Pass new MemoryStorage() only in tests',
      );
    }
    this.state = new DeviceState(opts.storage, this.app, this.defaultChannel);
    this.fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /**
   * Calls notifyAppReady(), settles the previous update (applied or rolled
   * back), subscribes to app state changes, and checks once.
   */
  async start(): Promise<LiveUpdateEvent> {
    try {
      await this.opts.updater.notifyAppReady();
    } catch (e) {
      this.emit({ type: 'error', message: `notifyAppReady: ${errText(e)}` });
    }
    try {
      await this.settle();
    } catch (e) {
      this.emit({ type: 'error', message: `settle the last update: ${errText(e)}` });
    }
    if (this.opts.onAppStateChange && this.listener === undefined) {
      this.listener = this.opts.onAppStateChange((s) => void this.onState(s.isActive));
    }
    return this.check();
  }

  /** Removes the app state listener. */
  async stop(): Promise<void> {
    const l = (await this.listener) as { remove?: () => unknown } | undefined;
    this.listener = undefined;
    await l?.remove?.();
  }

  /** Checks for an update once, and downloads it if there is one. Concurrent calls share one check. */
  check(): Promise<LiveUpdateEvent> {
    this.running ??= this.checkOnce()
      .catch((e) => this.emit({ type: 'error', message: errText(e) }))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /** The channel that checks follow: the one set with setChannel(), else the constructor's. */
  getChannel(): Promise<string> {
    this.channel ??= this.state.chosenChannel().then(
      (c) => (c !== null && NAME.test(c) ? c : this.defaultChannel),
      () => this.defaultChannel,
    );
    return this.channel;
  }

  /**
   * Follows another channel from the next check on (call check() to check
   * now), and remembers it in the storage across restarts; null goes back
   * to the constructor's channel. Rejects a name that is not a valid
   * channel name, changing nothing. This, not CapacitorUpdater.setChannel()
   * (the plugin's own channel, for its auto-update), is what LiveUpdate follows.
   */
  async setChannel(name: string | null): Promise<void> {
    const channel = name === null ? this.defaultChannel : checkName('channel', name);
    await this.state.setChosenChannel(name === null ? null : channel);
    this.channel = Promise.resolve(channel);
  }

  /** Switches to the downloaded update now, if there is one: the app reloads. */
  async apply(): Promise<void> {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    const ev = { build: p.ref.id, version: p.ref.version };
    try {
      await this.state.setAttempt({ build: p.ref.id, bundle: p.bundle.id, version: p.ref.version, applied: true });
      this.emit({ type: 'applying', message: `switching to ${p.ref.id} (${p.ref.version})`, ...ev });
      await this.opts.updater.set({ id: p.bundle.id });
    } catch (e) {
      await this.state.addFailed(p.ref.id).catch(() => {});
      await this.state.setAttempt(null).catch(() => {});
      this.emit({ type: 'error', message: `set ${p.ref.id}: ${errText(e)}; it will not be tried again`, ...ev });
    }
  }

  private async onState(isActive: boolean): Promise<void> {
    this.active = isActive;
    if (isActive) await this.check();
    else await this.apply();
  }

  /** Settles the update of the last run: running now, or rolled back by the plugin. */
  private async settle(): Promise<void> {
    const a = await this.state.attempt();
    if (!a) return;
    const { bundle } = await this.opts.updater.current();
    const ev = { build: a.build, version: a.version };
    if (bundle.id === a.bundle && bundle.status !== 'error') {
      this.emit({ type: 'applied', message: `running ${a.build} (${a.version})`, ...ev });
    } else if (a.applied || bundle.id === a.bundle) {
      await this.state.addFailed(a.build);
      this.emit({ type: 'rolled_back', message: `${a.build} (${a.version}) did not start and was rolled back; it will not be tried again`, ...ev });
    } // else: downloaded, never armed nor switched to; the next check downloads it again
    await this.state.setAttempt(null);
  }

  private async checkOnce(): Promise<LiveUpdateEvent> {
    const channel = await this.getChannel();
    const m = await this.fetchManifests(channel);
    if ('type' in m) return this.emit(m);

    // Verify before anything else.
    const rollback = new DeviceState(this.opts.storage, this.app, channel);
    const seen = await rollback.rollback();
    let latest: Latest;
    try {
      const v = await verifyLatest(this.opts.trust, m.acl, m.latest, {
        app: this.app,
        channel,
        minACLVersion: seen.aclVersion,
        minSequence: seen.sequence,
        now: this.opts.now?.(),
      });
      await rollback.saveRollback({ aclVersion: v.acl.version, sequence: v.latest.sequence });
      latest = v.latest;
    } catch (e) {
      if (!(e instanceof VerifyError)) throw e;
      await this.reportRejected(e, channel, m.offered);
      return this.emit(rejected(e));
    }

    const { bundle: current, native } = await this.opts.updater.current();
    const sel = await this.select(latest, native ?? '', m.offeredID);
    if (!sel.build) return this.emit({ type: 'skipped', message: sel.detail });
    const ref = sel.build;
    const ev = { build: ref.id, version: ref.version };
    if (this.pending && this.pending.ref.id !== ref.id) {
      // The channel moved on (or back) since the download: forget it.
      this.pending = undefined;
      await this.state.setAttempt(null);
      await this.opts.updater.next({ id: current.id }).catch((e) => this.emit({ type: 'error', message: `next ${current.id}: ${errText(e)}` }));
    }
    if (current.version === ref.version) return this.emit({ type: 'up_to_date', message: `${ref.version} is running`, ...ev });
    if ((await this.state.failed()).includes(ref.id)) {
      return this.emit({ type: 'skipped', message: `${ref.id} failed to start on this device before`, ...ev });
    }
    if (this.pending) return this.emit({ type: 'downloaded', message: `${ref.id} is downloaded, waiting for the app to go to the background`, ...ev });

    // Failed downloads of this build (a lost connection, a timeout, HTTP
    // 429/503, low disk, a bad CDN object) are retried with a backoff, up to a limit.
    const now = (this.opts.now?.() ?? new Date()).getTime();
    const last = await this.state.downloadFailures();
    const failures = last?.build === ref.id ? last : undefined;
    if (failures) {
      const failed = `${ref.id} failed to download (${failures.count} of ${MAX_DOWNLOAD_ATTEMPTS} attempts)`;
      if (failures.count >= MAX_DOWNLOAD_ATTEMPTS) return this.emit({ type: 'skipped', message: `${failed}; waiting for another build`, ...ev });
      // A retry time further away than the longest delay means the clock was turned back: retry now.
      if (now < failures.retryAt && failures.retryAt - now <= MAX_RETRY_DELAY) {
        return this.emit({ type: 'skipped', message: `${failed}; next try after ${new Date(failures.retryAt).toISOString()}`, ...ev });
      }
    }

    this.emit({ type: 'downloading', message: `downloading ${ref.id} (${ref.version}, ${ref.size} bytes)`, ...ev });
    let bundle: BundleInfo;
    let manifest: Uint8Array | undefined;
    try {
      const dl = await this.downloadOptions(ref, channel);
      manifest = dl.manifest;
      bundle = await this.opts.updater.download(dl.options);
    } catch (e) {
      const count = (failures?.count ?? 0) + 1;
      const retryAt = now + retryDelay(count);
      await this.state.setDownloadFailures({ build: ref.id, count, retryAt });
      const then = count >= MAX_DOWNLOAD_ATTEMPTS ? 'giving up until another build is published' : `next try after ${new Date(retryAt).toISOString()}`;
      return this.emit({ type: 'download_failed', message: `download ${ref.id} (attempt ${count} of ${MAX_DOWNLOAD_ATTEMPTS}): ${errText(e)}; ${then}`, ...ev });
    }
    if (last) await this.state.setDownloadFailures(null);
    // The base of the next build's patch.
    if (manifest) await this.state.setFiles({ sha256: ref.files_sha256, manifest: new TextDecoder().decode(manifest) });
    await this.reportComplete(ref);
    this.pending = { ref, bundle };
    // With next() armed the plugin switches by itself when the app goes to
    // the background or is killed, maybe before this code hears of it: from
    // here on, not running this bundle at the next start means it failed.
    const attempt = { build: ref.id, bundle: bundle.id, version: ref.version, applied: true };
    await this.state.setAttempt(attempt);
    try {
      await this.opts.updater.next({ id: bundle.id });
    } catch (e) {
      await this.state.setAttempt({ ...attempt, applied: false });
      this.emit({ type: 'error', message: `next ${bundle.id}: ${errText(e)}`, ...ev });
    }
    const done = this.emit({ type: 'downloaded', message: `downloaded ${ref.id} (${ref.version})`, ...ev });
    if (this.opts.applyImmediately || !this.active) await this.apply();
    return done;
  }

  /**
   * The build to run under a verified pointer: the tracker's offer when it
   * names a build of that pointer that fits the native version (the
   * tracker holds back a candidate it halted and a build that failed on
   * this device), else the pointer's own selection (staged rollout cohort,
   * native range, fallbacks). A halt read from the CDN has already removed
   * the candidate from the pointer.
   */
  private async select(l: Latest, native: string, offeredID?: string): Promise<Selection> {
    const offered = [l.candidate?.build, l.build, ...l.fallbacks].find((b) => b !== undefined && b.id === offeredID);
    if (offered && nativeFits(offered, native)) {
      return { build: offered, reason: offered === l.candidate?.build ? 'candidate' : offered === l.build ? 'stable' : 'fallback', detail: '' };
    }
    return selectBuild(l, native, await this.device());
  }

  /**
   * Fetches latest.json and acl.json; or the event that says why there are
   * none. The tracker's answers without envelopes give the event the same
   * situation gives from the CDN: no build for this native version (or one
   * blocked on this device) is skipped, a manifest the tracker refuses is
   * rejected, a page that is not JSON is rejected as malformed.
   */
  private async fetchManifests(channel: string): Promise<{ latest: EnvelopeInput; acl: EnvelopeInput; offered?: string; offeredID?: string } | LiveUpdateEvent> {
    const none = `nothing published for ${this.app}/${channel}`;
    if (this.opts.cdn) {
      const base = trimSlash(this.opts.cdn);
      const [latest, acl] = await Promise.all([
        this.get(`${base}/apps/${this.app}/channels/${channel}/latest.json`),
        this.get(`${base}/acl.json`),
      ]);
      if (latest.status === 404) {
        await acl.body?.cancel();
        return { type: 'no_update', message: none };
      }
      return { latest: await body(latest, MAX_LATEST_SIZE), acl: await body(acl, MAX_ACL_SIZE) };
    }
    const q = new URLSearchParams({ app: this.app, device: await this.device(), channel });
    const { native } = await this.opts.updater.current();
    if (native) q.set('native', native);
    const url = `${trimSlash(this.opts.tracker!)}/build/latest?${q}`;
    const res = await this.get(url, {}, true);
    // Two envelopes and a few fields: over twice their limits is no answer of a tracker's.
    const text = new TextDecoder().decode(await readAtMost(res, 2 * (MAX_ACL_SIZE + MAX_LATEST_SIZE)));
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      if (res.status === 404) json = undefined;
      else return rejected(new VerifyError('malformed', `the tracker's answer is not JSON (a captive portal's or a proxy's page?): ${errText(e)}`));
    }
    const answer = isObject(json) ? json : undefined;
    const code = typeof answer?.error === 'string' ? answer.error : undefined;
    const message = typeof answer?.message === 'string' ? answer.message : '';
    if (res.status === 404) {
      // Only a deploy tracker answers its codes; its no_route, for a route it lacks, means a wrong base URL.
      if (code === 'not_found') return { type: 'no_update', message: message ? `${none}: ${message}` : none };
      if (code === 'not_servable') {
        const rule = answer?.rule;
        return { type: 'rejected', message: `the tracker refuses to serve the manifest: ${message}`, ...(typeof rule === 'string' && isRule(rule) ? { rule } : {}) };
      }
      throw new Error(`${url}: HTTP 404, not a deploy tracker: check the tracker URL${code ? ` (${message || code})` : ''}`);
    }
    if (!answer) return rejected(new VerifyError('malformed', `the tracker's answer is not a JSON object: ${text.slice(0, 40)}`));
    // The envelopes are the authority; "build" only says whether one is offered.
    const build = answer.build;
    if (!isObject(build)) {
      // no_compatible_build: no build fits the native version; blocked: the build failed on this device.
      if (code === 'no_compatible_build' || code === 'blocked') return { type: 'skipped', message };
      return { type: 'no_update', message: message ? `the tracker offers nothing: ${message}` : none };
    }
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    return { latest: answer.latest as EnvelopeInput, acl: answer.acl as EnvelopeInput, offered: str(build.build), offeredID: str(build.id) };
  }

  /** The zip, or the build's file manifest where the plugin takes one (delta.ts), and that manifest's bytes. */
  private async downloadOptions(ref: BuildRef, channel: string): Promise<{ options: DownloadOptions; manifest?: Uint8Array }> {
    const plugin = await this.opts.updater.getPluginVersion?.().catch(() => undefined);
    const fetchFiles = filesFetcher(this.app, this.opts, (url) => this.get(url), () => this.device());
    const last = await this.state.files();
    const base = last ? { sha256: last.sha256, data: new TextEncoder().encode(last.manifest) } : undefined;
    const { options, manifest, refused, patchRefused } = await downloadOptions(ref, this.app, await this.bundleURL(ref), plugin?.version, fetchFiles, base);
    const ev = { build: ref.id, version: ref.version };
    if (patchRefused) {
      this.emit({ type: 'error', rule: patchRefused.rule, message: `file manifest patch of ${ref.id} refused: ${patchRefused.message}; fetching the whole manifest`, ...ev });
      await this.reportRejected(patchRefused, channel, ref.version);
    }
    if (refused) {
      this.emit({ type: 'error', rule: refused.rule, message: `file manifest of ${ref.id} refused: ${refused.message}; downloading the zip`, ...ev });
      await this.reportRejected(refused, channel, ref.version);
    }
    return { options, manifest };
  }

  private async bundleURL(ref: BuildRef): Promise<string> {
    if (this.opts.cdn) return `${trimSlash(this.opts.cdn)}/${ref.bundle}`;
    const q = new URLSearchParams({ id: ref.id, device: await this.device() });
    return `${trimSlash(this.opts.tracker!)}/build/download?${q}`;
  }

  private async reportComplete(ref: BuildRef): Promise<void> {
    if (!this.opts.tracker) return;
    const q = new URLSearchParams({ id: ref.id, device: await this.device() });
    try {
      await (await this.get(`${trimSlash(this.opts.tracker)}/build/download/complete?${q}`)).body?.cancel();
    } catch (e) {
      this.emit({ type: 'error', message: `report download of ${ref.id}: ${errText(e)}`, build: ref.id });
    }
  }

  /**
   * Tells the tracker that a manifest was rejected, as a stats event of the
   * Capgo protocol: version_name is the version the tracker offered (as the
   * plugin names the version of a failed download), old_version_name the
   * running one.
   */
  private async reportRejected(e: VerifyError, channel: string, offered?: string): Promise<void> {
    if (!this.opts.tracker) return;
    try {
      const { bundle } = await this.opts.updater.current();
      const event = {
        action: 'verify_fail',
        app_id: this.app,
        device_id: await this.device(),
        version_name: offered ?? bundle.version,
        old_version_name: bundle.version,
        timestamp: Date.now(),
        metadata: { rule: e.rule, detail: e.detail, channel },
      };
      const res = await this.get(`${trimSlash(this.opts.tracker)}/capgo/${this.app}/stats`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([event]),
      });
      await res.body?.cancel();
    } catch {
      // best effort: the event was emitted locally
    }
  }

  private async device(): Promise<string> {
    this.deviceID ??= (await this.opts.updater.getDeviceId()).deviceId;
    return this.deviceID;
  }

  /**
   * fetch with a timeout that runs until the body is read, so that a body
   * that trickles in fails as a late answer does; any status but 2xx and
   * 404 is an error. The body of a 404 is dropped unless keep404.
   */
  private async get(url: string, init: RequestInit = {}, keep404 = false): Promise<Response> {
    const ms = this.opts.timeoutMs ?? 20000;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), ms);
    const done = () => clearTimeout(timer);
    try {
      const res = await this.fetch(url, { ...init, signal: ctl.signal });
      if (!res.ok && res.status !== 404) {
        const text = new TextDecoder().decode(await readAtMost(res, 200).catch(() => new Uint8Array()));
        throw new Error(`${init.method ?? 'GET'} ${url}: HTTP ${res.status} ${text.slice(0, 200)}`.trim());
      }
      // Statuses without a body (a browser may still give them an empty one, which a Response cannot take).
      if (!res.body || [204, 205, 304].includes(res.status) || (res.status === 404 && !keep404)) {
        await res.body?.cancel();
        done();
        return res;
      }
      const reader = res.body.getReader();
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          try {
            const { done: end, value } = await reader.read();
            if (end) {
              done();
              c.close();
            } else c.enqueue(value);
          } catch (e) {
            done();
            throw ctl.signal.aborted ? new Error(`${init.method ?? 'GET'} ${url}: no whole answer within ${ms} ms`) : e;
          }
        },
        cancel(reason) {
          done();
          return reader.cancel(reason);
        },
      });
      const wrapped = new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
      return Object.defineProperty(wrapped, 'url', { value: res.url });
    } catch (e) {
      done();
      throw e;
    }
  }

  private emit(e: LiveUpdateEvent): LiveUpdateEvent {
    try {
      this.opts.onEvent?.(e);
    } catch {
      // a listener's error is not ours
    }
    return e;
  }
}

async function body(res: Response, max: number): Promise<Uint8Array> {
  if (res.status === 404) throw new Error(`${res.url}: HTTP 404`);
  return readAtMost(res, max);
}

const trimSlash = (s: string) => s.replace(/\/+$/, '');

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const rejected = (e: VerifyError): LiveUpdateEvent => ({ type: 'rejected', rule: e.rule, message: `manifest rejected: ${e.message}` });

// Every Rule, so that a rule named by the tracker is checked against them (the compiler checks the list).
const RULES: Record<Rule, true> = {
  too_large: true,
  malformed: true,
  unsigned: true,
  acl_untrusted: true,
  acl_rollback: true,
  bad_signature: true,
  untrusted_key: true,
  app_mismatch: true,
  channel_mismatch: true,
  not_granted: true,
  rollback: true,
  expired: true,
  bundle_mismatch: true,
  files_mismatch: true,
  history_gap: true,
};

const isRule = (s: string): s is Rule => Object.prototype.hasOwnProperty.call(RULES, s);

/** App and channel names, as docs/format.md says. */
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Returns name if it is a valid app or channel name; else throws, saying what to write. */
function checkName(what: 'app' | 'channel', name: unknown): string {
  if (typeof name === 'string' && NAME.test(name)) return name;
  const lower = typeof name === 'string' ? name.toLowerCase() : '';
  const hint = NAME.test(lower) ? `; names are lowercase: use ${JSON.stringify(lower)}` : '';
  throw new Error(
    `invalid ${what} name ${name === undefined ? 'undefined' : JSON.stringify(name)}: ${what} names are 1 to 64 of a-z, 0-9, ".", "_" and "-", starting with a letter or digit${hint}`,
  );
}

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

// What a device remembers between runs: the anti-rollback state of each app
// and channel, and for each app the channel chosen with setChannel, the
// builds that failed to start, the failed downloads of the latest build,
// the update being applied, and the last file manifest passed to the
// plugin. All but the anti-rollback state are about the device's bundles,
// whatever channel they came from.

/**
 * A small persistent key-value store. @capacitor/preferences fits:
 *
 *     const storage = {
 *       get: async (key) => (await Preferences.get({ key })).value,
 *       set: (key, value) => Preferences.set({ key, value }),
 *     };
 */
export interface KeyValueStorage {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<void>;
}

/**
 * A KeyValueStorage in memory, for tests. It forgets everything on restart,
 * so LiveUpdate on a device must not use it: a build the plugin rolled back
 * would be downloaded again at every start.
 */
export class MemoryStorage implements KeyValueStorage {
  readonly data = new Map<string, string>();
  async get(key: string): Promise<string | null> {
    return this.data.get(key) ?? null;
  }
  async set(key: string, value: string): Promise<void> {
    this.data.set(key, value);
  }
}

/** The highest ACL version and latest.json sequence accepted before, for one app and channel. */
export interface RollbackState {
  aclVersion: number;
  sequence: number;
}

/** An update downloaded and handed to the updater, not yet seen running. */
export interface Attempt {
  build: string; // build id
  bundle: string; // the updater's bundle id
  version: string;
  /** Whether the switch was made or armed (set() or next() called). */
  applied: boolean;
}

/** The failed downloads of one build in a row, for the backoff. */
export interface DownloadFailures {
  build: string; // build id
  count: number;
  /** No new download before this time, in ms since the epoch. */
  retryAt: number;
}

/** The last file manifest checked and passed to the plugin: the base of the next build's patch. */
export interface RememberedFiles {
  sha256: string; // of its bytes
  manifest: string; // its bytes (UTF-8 JSON) as text
}

/** How many failed build ids are remembered per app; older ones are dropped. */
const MAX_FAILED = 50;

/**
 * Typed access to the device state kept in a KeyValueStorage, under keys
 * that start with prefix: "<prefix><app>/<channel>/rollback" for the
 * channel's anti-rollback state, "<prefix><app>/<what>" for the rest,
 * among it "<prefix><app>/acl", the highest ACL version accepted on any
 * channel (one ACL signs every channel, so switching channels never lowers
 * it). State an older client kept per channel, under
 * "<prefix><app>/<channel>/<what>", is read when the app's is missing.
 */
export class DeviceState {
  constructor(
    private readonly storage: KeyValueStorage,
    private readonly app: string,
    private readonly channel: string,
    private readonly prefix = 'deploy:',
  ) {}

  // App and channel names never contain '/', so the two forms never meet.
  private key(what: string): string {
    return what === 'rollback' ? `${this.prefix}${this.app}/${this.channel}/${what}` : `${this.prefix}${this.app}/${what}`;
  }

  private async read<T>(what: string, fallback: T): Promise<T> {
    let s = await this.storage.get(this.key(what));
    if (s === null && what !== 'rollback' && what !== 'acl' && what !== 'channel') {
      s = await this.storage.get(`${this.prefix}${this.app}/${this.channel}/${what}`);
    }
    if (s === null) return fallback;
    try {
      return JSON.parse(s) as T;
    } catch {
      return fallback;
    }
  }

  private write(what: string, v: unknown): Promise<void> {
    return this.storage.set(this.key(what), JSON.stringify(v));
  }

  /** The channel chosen with LiveUpdate.setChannel, whatever the channel of this DeviceState; null if none. */
  async chosenChannel(): Promise<string | null> {
    const c = await this.read<unknown>('channel', null);
    return typeof c === 'string' ? c : null;
  }

  async setChosenChannel(c: string | null): Promise<void> {
    await this.write('channel', c);
  }

  /**
   * The anti-rollback state: the channel's sequence, and the highest ACL
   * version accepted on any channel of the app; zeros if nothing was
   * accepted yet.
   */
  async rollback(): Promise<RollbackState> {
    const r = await this.read<Partial<RollbackState>>('rollback', {});
    const acl = Number(await this.read<unknown>('acl', 0)) || 0;
    return { aclVersion: Math.max(Number(r.aclVersion) || 0, acl), sequence: Number(r.sequence) || 0 };
  }

  /** Records a verified ACL version and sequence; never lowers what is stored. */
  async saveRollback(s: RollbackState): Promise<void> {
    const old = await this.rollback();
    const aclVersion = Math.max(old.aclVersion, s.aclVersion);
    await this.write('rollback', { aclVersion, sequence: Math.max(old.sequence, s.sequence) });
    await this.write('acl', aclVersion);
  }

  async failed(): Promise<string[]> {
    const f = await this.read<unknown>('failed', []);
    return Array.isArray(f) ? f.filter((x): x is string => typeof x === 'string') : [];
  }

  /** Remembers that a build failed to start, so that it is never downloaded again. */
  async addFailed(buildID: string): Promise<void> {
    const f = (await this.failed()).filter((x) => x !== buildID);
    f.push(buildID);
    await this.write('failed', f.slice(-MAX_FAILED));
  }

  /** The failed downloads of the build tried last; null if its last download succeeded. */
  async downloadFailures(): Promise<DownloadFailures | null> {
    const f = await this.read<DownloadFailures | null>('download', null);
    return f && typeof f.build === 'string' && Number.isInteger(f.count) && Number.isFinite(f.retryAt) ? f : null;
  }

  async setDownloadFailures(f: DownloadFailures | null): Promise<void> {
    await this.write('download', f);
  }

  async attempt(): Promise<Attempt | null> {
    const a = await this.read<Attempt | null>('attempt', null);
    return a && typeof a.build === 'string' && typeof a.bundle === 'string' ? a : null;
  }

  async setAttempt(a: Attempt | null): Promise<void> {
    await this.write('attempt', a);
  }

  /** The last file manifest passed to the plugin; null if none. */
  async files(): Promise<RememberedFiles | null> {
    const f = await this.read<RememberedFiles | null>('files', null);
    return f && typeof f.sha256 === 'string' && typeof f.manifest === 'string' ? f : null;
  }

  async setFiles(f: RememberedFiles | null): Promise<void> {
    await this.write('files', f);
  }
}

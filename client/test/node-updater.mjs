// A stand-in for @capgo/capacitor-updater's CapacitorUpdater in Node: it
// really downloads over HTTP (following redirects) and checks the sha256
// checksum as the plugin does, and keeps bundles in memory. Not a test file.
import { createHash, randomUUID } from 'node:crypto';
import { brotliDecompressSync, crc32 } from 'node:zlib';

const sha256 = (b) => createHash('sha256').update(b).digest('hex');

export class NodeUpdater {
  /**
   * pluginVersion: what getPluginVersion() answers (none: the method is
   * absent); versions before 5.10.0 check a CRC32. builtinFiles: the
   * builtin bundle's files, by name, which a manifest download reuses.
   */
  constructor({ native = '1.0.0', deviceId = randomUUID(), pluginVersion, builtinFiles = new Map() } = {}) {
    this.native = native;
    this.deviceId = deviceId;
    this.fetched = []; // URLs of manifest files downloaded
    if (pluginVersion) this.getPluginVersion = async () => ({ version: pluginVersion });
    this.crc = pluginVersion !== undefined && /^[0-4]\.|^5\.[0-9]\./.test(pluginVersion);
    this.bundles = new Map([['builtin', { id: 'builtin', version: 'builtin', status: 'success', checksum: '', downloaded: '', files: builtinFiles }]]);
    this.currentId = 'builtin';
    this.nextId = null;
    this.calls = []; // [method, argument]
  }

  /** The names of the methods called, in order. */
  get methods() {
    return this.calls.map(([m]) => m);
  }

  async download(options) {
    this.calls.push(['download', { ...options }]);
    const { url, version, checksum, manifest } = options;
    if (manifest) return this.downloadManifest(version, manifest);
    const res = await fetch(url);
    if (!res.ok) throw new Error(`download_fail: HTTP ${res.status}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    const sum = this.crc ? crc32(bytes).toString(16).padStart(8, '0') : sha256(bytes);
    if (checksum !== undefined && checksum !== '' && checksum !== sum) throw new Error(`checksum_fail: got ${sum}, want ${checksum}`);
    const info = { id: randomUUID().slice(0, 10), version, status: 'pending', checksum: sum, downloaded: new Date().toISOString() };
    this.bundles.set(info.id, { ...info, bytes });
    return info;
  }

  /**
   * A manifest download as the plugin makes it: a file whose hash the
   * current bundle has is copied, every other one downloaded, decompressed
   * when its file_name ends in ".br", and compared with file_hash.
   */
  async downloadManifest(version, manifest) {
    const have = new Map([...this.bundles.get(this.currentId).files?.values() ?? []].map((b) => [sha256(b), b]));
    const files = new Map();
    for (const { file_name, file_hash, download_url } of manifest) {
      const name = file_name.replace(/\.br$/, '');
      if (files.has(name)) throw new Error(`download_fail: duplicate manifest target path ${name}`);
      let bytes = have.get(file_hash);
      if (!bytes) {
        this.fetched.push(download_url);
        const res = await fetch(download_url);
        if (!res.ok) throw new Error(`download_fail: HTTP ${res.status} for ${file_name}`);
        bytes = Buffer.from(await res.arrayBuffer());
        if (file_name.endsWith('.br')) bytes = brotliDecompressSync(bytes);
      }
      if (sha256(bytes) !== file_hash) throw new Error(`download_fail: checksum of ${name} differs from file_hash`);
      files.set(name, bytes);
    }
    const info = { id: randomUUID().slice(0, 10), version, status: 'pending', checksum: '', downloaded: new Date().toISOString() };
    this.bundles.set(info.id, { ...info, files });
    return info;
  }

  async set({ id }) {
    this.calls.push(['set', { id }]);
    if (!this.bundles.has(id)) throw new Error(`no bundle ${id}`);
    this.currentId = id; // the real plugin reloads the WebView here
  }

  async next({ id }) {
    this.calls.push(['next', { id }]);
    if (!this.bundles.has(id)) throw new Error(`no bundle ${id}`);
    this.nextId = id;
  }

  async notifyAppReady() {
    this.calls.push(['notifyAppReady']);
    this.bundles.get(this.currentId).status = 'success';
    return { bundle: this.info(this.currentId) };
  }

  async current() {
    this.calls.push(['current']);
    return { bundle: this.info(this.currentId), native: this.native };
  }

  async getDeviceId() {
    return { deviceId: this.deviceId };
  }

  /** The app is killed and started again: the plugin applies the bundle armed with next(). */
  restart() {
    if (this.nextId) this.currentId = this.nextId;
    this.nextId = null;
  }

  /** What the plugin does when a new bundle never calls notifyAppReady: mark it failed and go back. */
  rollBack() {
    this.bundles.get(this.currentId).status = 'error';
    this.currentId = 'builtin';
  }

  info(id) {
    const { bytes, files, ...info } = this.bundles.get(id);
    return info;
  }
}

// A stand-in for @capgo/capacitor-updater's CapacitorUpdater in Node: it
// really downloads over HTTP (following redirects) and checks the sha256
// checksum as the plugin does, and keeps bundles in memory. Not a test file.
import { createHash, randomUUID } from 'node:crypto';

export class NodeUpdater {
  constructor({ native = '1.0.0', deviceId = randomUUID() } = {}) {
    this.native = native;
    this.deviceId = deviceId;
    this.bundles = new Map([['builtin', { id: 'builtin', version: 'builtin', status: 'success', checksum: '', downloaded: '' }]]);
    this.currentId = 'builtin';
    this.nextId = null;
    this.calls = []; // [method, argument]
  }

  /** The names of the methods called, in order. */
  get methods() {
    return this.calls.map(([m]) => m);
  }

  async download({ url, version, checksum }) {
    this.calls.push(['download', { url, version, checksum }]);
    const res = await fetch(url);
    if (!res.ok) throw new Error(`download_fail: HTTP ${res.status}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    const sum = createHash('sha256').update(bytes).digest('hex');
    if (checksum !== undefined && checksum !== sum) throw new Error(`checksum_fail: got ${sum}, want ${checksum}`);
    const info = { id: randomUUID().slice(0, 10), version, status: 'pending', checksum: sum, downloaded: new Date().toISOString() };
    this.bundles.set(info.id, { ...info, bytes });
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
    const { bytes, ...info } = this.bundles.get(id);
    return info;
  }
}

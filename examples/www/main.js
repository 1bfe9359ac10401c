// A web build calls notifyAppReady() as soon as it starts; otherwise the
// Capgo plugin rolls the update back after appReadyTimeout (10 s).
const updater = window.Capacitor?.Plugins?.CapacitorUpdater;
if (updater) {
  updater.notifyAppReady();
  updater.current().then(({ bundle }) => {
    document.getElementById('version').textContent = `bundle ${bundle.version}`;
  });
}

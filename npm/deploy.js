#!/usr/bin/env node
// The deploy command of @cartona/deploy-cli: runs the Go binary that npm
// installed with the optional dependency @cartona/deploy-cli-<os>-<cpu> of
// this platform, passing arguments, standard streams, signals and the exit
// status through.
'use strict';

const { spawn } = require('node:child_process');
const path = require('node:path');
const os = require('node:os');

const target = `${process.platform}-${process.arch}`;
const pkg = `@cartona/deploy-cli-${target}`;
const exe = process.platform === 'win32' ? 'deploy.exe' : 'deploy';

function fail(message) {
  process.stderr.write(`deploy: ${message}\n`);
  process.exit(1);
}

function binary() {
  try {
    return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), 'bin', exe);
  } catch {
    const supported = Object.keys(require('../package.json').optionalDependencies || {});
    if (!supported.includes(pkg)) {
      fail(`no prebuilt binary for ${target}; build it from source with\n` +
        '  go install github.com/cartona/deploy/cmd/deploy@latest');
    }
    fail(`${pkg}, the binary for this platform, is not installed.\n` +
      'npm installs it with @cartona/deploy-cli unless optional dependencies are left out\n' +
      '(--omit=optional, --no-optional) or node_modules was copied from another platform.\n' +
      'Reinstall: npm install @cartona/deploy-cli (or npm install -g @cartona/deploy-cli)');
  }
}

const child = spawn(binary(), process.argv.slice(2), { stdio: 'inherit' });

// Signals sent to this process (a CI runner's SIGTERM, kill) go to the
// binary, which shuts down gracefully; this process exits when it does.
// On Windows the console delivers Ctrl-C to both already.
const forwarded = ['SIGINT', 'SIGTERM', 'SIGHUP'];
for (const sig of forwarded) {
  process.on(sig, () => {
    if (process.platform !== 'win32') child.kill(sig);
  });
}

child.on('error', (err) => fail(`cannot run ${child.spawnfile}: ${err.message}`));

child.on('exit', (code, signal) => {
  if (signal === null) {
    process.exit(code);
  }
  // The binary died of a signal: die of the same one, so that the shell
  // or CI runner sees what happened.
  for (const sig of forwarded) process.removeAllListeners(sig);
  process.kill(process.pid, signal);
  process.exit(128 + (os.constants.signals[signal] || 0));
});

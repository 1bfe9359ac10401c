package client_test

import (
	"testing"

	"github.com/cartona/deploy/internal/browsertest"
)

// TestVectorsInBrowser runs the shared vectors through the compiled client
// in a real headless Chromium, the engine of Android's WebView, with each
// Ed25519 implementation, and a gzip bomb through its DecompressionStream.
func TestVectorsInBrowser(t *testing.T) {
	npm := npmInstalled(t)
	run(t, nil, npm, "run", "build")
	run(t, []string{"CHROMIUM=" + browsertest.Chromium(t), "PLAYWRIGHT_FROM=" + browsertest.NPM(t)}, "node", "test/browser/run.mjs")
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// manifest is a package.json, fields in the order npm writes them.
type manifest struct {
	Name                 string            `json:"name"`
	Version              string            `json:"version"`
	Description          string            `json:"description"`
	License              string            `json:"license"`
	Repository           repository        `json:"repository"`
	Homepage             string            `json:"homepage"`
	Keywords             []string          `json:"keywords,omitempty"`
	OS                   []string          `json:"os,omitempty"`
	CPU                  []string          `json:"cpu,omitempty"`
	Bin                  map[string]string `json:"bin,omitempty"`
	Files                []string          `json:"files"`
	OptionalDependencies map[string]string `json:"optionalDependencies,omitempty"`
	Engines              map[string]string `json:"engines,omitempty"`
	PreferUnplugged      bool              `json:"preferUnplugged,omitempty"`
	PublishConfig        map[string]string `json:"publishConfig"`
}

type repository struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

func base(name, version, description string) manifest {
	return manifest{
		Name: scope + name, Version: version, Description: description,
		License:       "Apache-2.0",
		Repository:    repository{Type: "git", URL: "git+" + repoURL + ".git"},
		Homepage:      repoURL + "#readme",
		Files:         []string{"bin"},
		PublishConfig: map[string]string{"access": "public"},
	}
}

// writeMain writes @cartona/deploy-cli: the launcher as the deploy bin, and
// every platform package as an optional dependency of the same version.
func writeMain(dir, version string, license []byte) error {
	m := base(mainName, version, "Self-hosted live updates for Ionic/Capacitor apps: the deploy command line")
	m.Keywords = []string{"ionic", "capacitor", "live-update", "capgo", "appflow", "deploy"}
	m.Bin = map[string]string{"deploy": "bin/deploy.js"}
	m.Engines = map[string]string{"node": ">=18"}
	m.OptionalDependencies = map[string]string{}
	for _, p := range platforms {
		m.OptionalDependencies[scope+p.name()] = version
	}
	return writePackage(dir, m, readme, license, "deploy.js", launcher)
}

// writePlatform writes the package of one platform's binary. npm installs
// it only where os and cpu match.
func writePlatform(dir string, p platform, bin, version string, license []byte) error {
	m := base(p.name(), version, fmt.Sprintf("The %s %s binary of @cartona/deploy-cli", p.os, p.cpu))
	m.OS, m.CPU = []string{p.os}, []string{p.cpu}
	m.PreferUnplugged = true // Yarn: keep the binary on disk, not in a zip
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("# %s%s\n\nThe %s %s binary of [@cartona/deploy-cli](https://www.npmjs.com/package/@cartona/deploy-cli).\nInstall that package, not this one: npm picks this one for %s on %s.\n",
		scope, p.name(), p.os, p.cpu, p.cpu, p.os)
	return writePackage(dir, m, []byte(text), license, p.exe(), exe)
}

// writePackage writes package.json, README.md, LICENSE and bin/<name>.
func writePackage(dir string, m manifest, readme, license []byte, name string, bin []byte) error {
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return err
	}
	var pkg bytes.Buffer
	enc := json.NewEncoder(&pkg)
	enc.SetEscapeHTML(false) // ">=18", not "\u003e=18"
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"package.json", pkg.Bytes(), 0o644},
		{"README.md", readme, 0o644},
		{"LICENSE", license, 0o644},
		{filepath.Join("bin", name), bin, 0o755},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

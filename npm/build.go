package main

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	scope    = "@cartona/"
	mainName = "deploy-cli"
	repoURL  = "https://github.com/cartona/deploy"
)

//go:embed deploy.js
var launcher []byte

//go:embed package-readme.md
var readme []byte

// platform is one prebuilt binary: Go's names and npm's.
type platform struct{ goos, goarch, os, cpu string }

// platforms are the targets of .goreleaser.yaml, in publishing order.
var platforms = []platform{
	{"linux", "amd64", "linux", "x64"},
	{"linux", "arm64", "linux", "arm64"},
	{"darwin", "amd64", "darwin", "x64"},
	{"darwin", "arm64", "darwin", "arm64"},
	{"windows", "amd64", "win32", "x64"},
	{"windows", "arm64", "win32", "arm64"},
}

// name is the package's name without the scope: deploy-cli-linux-x64.
func (p platform) name() string { return mainName + "-" + p.os + "-" + p.cpu }

// exe is the binary's file name in the package.
func (p platform) exe() string {
	if p.goos == "windows" {
		return "deploy.exe"
	}
	return "deploy"
}

type options struct {
	dist, out, license, version string
	partial                     bool
}

// build writes the platform packages and then the main package into o.out,
// and returns their folders in publishing order.
func build(o options) ([]string, error) {
	bins, version, err := readDist(o.dist)
	if err != nil {
		return nil, err
	}
	if o.version != "" {
		version = o.version
	}
	if version == "" {
		return nil, errors.New("no version: metadata.json has none; pass -version")
	}
	license, err := os.ReadFile(o.license)
	if err != nil {
		return nil, fmt.Errorf("license: %w", err)
	}
	if err := os.RemoveAll(o.out); err != nil {
		return nil, err
	}
	var dirs []string
	for _, p := range platforms {
		bin, ok := bins[p.goos+"/"+p.goarch]
		if !ok && o.partial {
			continue
		}
		if !ok {
			return nil, fmt.Errorf("%s has no binary for %s/%s: run `goreleaser release --clean` (or `goreleaser build --clean --snapshot`) first", o.dist, p.goos, p.goarch)
		}
		dir := filepath.Join(o.out, p.name())
		if err := writePlatform(dir, p, bin, version, license); err != nil {
			return nil, err
		}
		dirs = append(dirs, dir)
	}
	dir := filepath.Join(o.out, mainName)
	if err := writeMain(dir, version, license); err != nil {
		return nil, err
	}
	return append(dirs, dir), nil
}

// readDist reads goreleaser's artifacts.json and metadata.json: the path of
// each binary by "goos/goarch", and the release version.
func readDist(dist string) (map[string]string, string, error) {
	var artifacts []struct {
		Path, Type, GOOS, GOARCH string
	}
	if err := readJSON(filepath.Join(dist, "artifacts.json"), &artifacts); err != nil {
		return nil, "", fmt.Errorf("%w: run goreleaser first, or pass -dist", err)
	}
	var meta struct{ Version string }
	if err := readJSON(filepath.Join(dist, "metadata.json"), &meta); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	bins := map[string]string{}
	for _, a := range artifacts {
		if a.Type != "Binary" || strings.TrimSuffix(filepath.Base(a.Path), ".exe") != "deploy" {
			continue
		}
		path := a.Path
		if !filepath.IsAbs(path) {
			// goreleaser writes paths relative to the folder it ran in,
			// which holds dist.
			path = filepath.Join(filepath.Dir(filepath.Clean(dist)), path)
		}
		bins[a.GOOS+"/"+a.GOARCH] = path
	}
	return bins, meta.Version, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

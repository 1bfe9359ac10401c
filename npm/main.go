// Command npm builds the npm packages of the deploy CLI from goreleaser's
// output, so that Ionic teams install it as they install their other tools:
//
//	npm install -g @cartona/deploy-cli     # or --save-dev, then npx deploy
//
// It writes one package per platform (@cartona/deploy-cli-<os>-<cpu>, with
// the binary and npm's os and cpu fields) and the main package
// @cartona/deploy-cli, whose bin is a small launcher (deploy.js) that runs
// the binary of the platform package npm installed among its
// optionalDependencies. Nothing is downloaded at install time.
//
// After `goreleaser release --clean`:
//
//	go run ./npm                 # reads dist/artifacts.json, writes dist/npm/*
//	for p in dist/npm/deploy-cli-*/ dist/npm/deploy-cli/; do npm publish "$p"; done
//
// Publish the platform packages before the main package.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	var o options
	flag.StringVar(&o.dist, "dist", "dist", "goreleaser's dist folder (artifacts.json, metadata.json)")
	flag.StringVar(&o.out, "out", "dist/npm", "folder to write the packages into (emptied first)")
	flag.StringVar(&o.license, "license", "LICENSE", "the license file every package carries")
	flag.StringVar(&o.version, "version", "", "package version (default: metadata.json's version)")
	flag.BoolVar(&o.partial, "partial", false, "allow platforms without a binary (local tests only: never publish such a build)")
	flag.Parse()
	dirs, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "npm:", err)
		os.Exit(1)
	}
	for _, d := range dirs {
		fmt.Println(d)
	}
}

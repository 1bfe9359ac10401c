// Package lockfile takes exclusive locks on files, between processes: the
// local-folder store serialises its compare-and-swap writes with it, and the
// tests build their S3 server once across parallel test packages.
package lockfile

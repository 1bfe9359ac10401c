//go:build !linux

package file

// syncFiles makes the staged files durable.
func syncFiles(_ string, files []staged) error { return fsyncEach(files) }

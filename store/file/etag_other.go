//go:build !(aix || dragonfly || linux || openbsd || solaris || darwin || freebsd || netbsd)

package file

import "io/fs"

// fileChange reports that this system gives no inode number and change
// time (Windows, Plan 9, WebAssembly).
func fileChange(fs.FileInfo) (ino uint64, ctime int64, ok bool) { return 0, 0, false }

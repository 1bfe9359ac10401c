//go:build darwin || freebsd || netbsd

package file

import (
	"io/fs"
	"syscall"
)

// fileChange returns the inode number and change time (ctime, in
// nanoseconds) of fi, and false where the system does not give them.
func fileChange(fi fs.FileInfo) (ino uint64, ctime int64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Ino), int64(st.Ctimespec.Sec)*1e9 + int64(st.Ctimespec.Nsec), true
}

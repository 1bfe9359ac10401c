package publish

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"
)

func TestCheckZip32RefusesWhatNeedsZip64(t *testing.T) {
	for _, c := range []struct {
		size    int64
		entries int
		ok      bool
	}{
		{1<<32 - 2, 65534, true},
		{1<<32 - 1, 1, false},
		{1 << 33, 1, false},
		{100, 65535, false},
	} {
		err := checkZip32(c.size, c.entries)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrBadBuild)) {
			t.Errorf("checkZip32(%d, %d) = %v, want ok %v", c.size, c.entries, err, c.ok)
		}
	}
}

// A file of a build that cannot be read is named with what to do, without
// the system call that failed.
func TestUnreadableSaysWhatToDo(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&fs.PathError{Op: "open", Path: "www/secret.js", Err: syscall.EACCES}, "www/secret.js cannot be read (permission denied); make it readable (chmod a+r) or move it out of the build folder"},
		{&fs.PathError{Op: "stat", Path: "www/loop", Err: syscall.ELOOP}, "www/loop is a symbolic link that loops; remove it"},
		{&fs.PathError{Op: "read", Path: "www/a.js", Err: syscall.EIO}, "www/a.js: input/output error"},
	} {
		err := unreadable(c.err)
		if !errors.Is(err, ErrBadBuild) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), c.err.(*fs.PathError).Op+" ") {
			t.Errorf("unreadable(%v) = %v, want one saying %q", c.err, err, c.want)
		}
	}
}

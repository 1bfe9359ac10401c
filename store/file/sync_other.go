//go:build !linux

package file

import "os"

// syncFiles makes the staged files durable, one fsync each.
func syncFiles(_ string, files []staged) error {
	for _, st := range files {
		f, err := os.OpenFile(st.tmp, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

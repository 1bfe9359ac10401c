package file

import "golang.org/x/sys/unix"

// fsyncLimit is the most staged files synced one by one: past it, one
// syncfs of the store's file system is faster than an fsync each, though
// it also writes out whatever else on that file system is dirty.
const fsyncLimit = 16

// syncFiles makes the staged files durable.
func syncFiles(root string, files []staged) error {
	if len(files) <= fsyncLimit {
		return fsyncEach(files)
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

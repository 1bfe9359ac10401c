package file

import "golang.org/x/sys/unix"

// fsyncLimit is the most staged files synced one by one: past it, one
// syncfs of the store's file system is faster than an fsync each, though
// it also writes out whatever else on that file system is dirty.
const fsyncLimit = 16

// syncfsKinds are the local file systems whose syncfs is known to make
// every file durable. On others (NFS, FUSE before Linux 5.15, where
// syncfs does nothing) each file is synced.
var syncfsKinds = map[int64]bool{
	unix.EXT4_SUPER_MAGIC:  true, // also ext2 and ext3
	unix.XFS_SUPER_MAGIC:   true,
	unix.BTRFS_SUPER_MAGIC: true,
	unix.F2FS_SUPER_MAGIC:  true,
	unix.TMPFS_MAGIC:       true,
}

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
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil || !syncfsKinds[int64(fs.Type)] {
		return fsyncEach(files)
	}
	return unix.Syncfs(fd)
}

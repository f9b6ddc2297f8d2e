package workspace

import (
	"os"
	"syscall"
)

func ownerUID(name string) (int, error) {
	fi, err := os.Lstat(name)
	if err != nil {
		return -1, err
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid), nil
}

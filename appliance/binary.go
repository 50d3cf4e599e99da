package appliance

import "syscall"

// binary is the executable children run. A reload notices when it was
// replaced on disk (a package upgrade renames a new file over it) and then
// starts a new generation of processes on the new binary.
type binary struct {
	path string
	id   fileID
}

type fileID struct {
	dev, ino uint64
	mtime    int64
	size     int64
}

func newBinary(path string) binary {
	return binary{path: path, id: statID(path)}
}

func statID(path string) fileID {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fileID{}
	}
	return fileID{dev: st.Dev, ino: st.Ino, mtime: st.Mtim.Nano(), size: st.Size}
}

// changed reports whether the file at path is no longer the one the
// running children were started from.
func (b binary) changed() bool {
	now := statID(b.path)
	return now != (fileID{}) && now != b.id
}

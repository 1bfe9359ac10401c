package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cartona/deploy/internal/lockfile"
	"github.com/cartona/deploy/manifest"
)

// seen is this user's anti-rollback floor for one channel of one store,
// kept in seen.json: the highest ACL version and sequence that `deploy
// verify` accepted, or that a command of this user signed (an upload, a
// release command). verify refuses anything older, so a latest.json put
// back by someone who can write to the store is refused even when verify
// never saw the pointer that replaced it.
type seen struct {
	ACLVersion int64 `json:"acl_version"`
	Sequence   int64 `json:"sequence"`
}

func seenPath() string { return filepath.Join(configDir(), "seen.json") }

// seenID names a channel in seen.json: by the store's identity, so that
// every spelling of one store's URL shares one floor.
func seenID(storeURL, app, channel string) (string, error) {
	loc, err := parseStore(storeURL)
	if err != nil {
		return "", err
	}
	return loc.identity() + " " + app + "/" + channel, nil
}

// floorOf is the floor verify checks channel id against: its sequence, and
// the highest ACL version seen on any channel of its store, since one
// acl.json signs them all (verifying another channel must not take an
// older ACL than one already seen).
func floorOf(floors map[string]seen, id string) seen {
	f := floors[id]
	store := id[:strings.LastIndexByte(id, ' ')+1]
	for other, s := range floors {
		if strings.HasPrefix(other, store) {
			f.ACLVersion = max(f.ACLVersion, s.ACLVersion)
		}
	}
	return f
}

// readSeen returns every channel's floor; none when seen.json is missing.
// A seen.json that cannot be read is an error: going on without the floors
// would accept what they refuse, and writing would drop them.
func readSeen() (map[string]seen, error) {
	states := map[string]seen{}
	data, err := os.ReadFile(seenPath())
	if errors.Is(err, fs.ErrNotExist) {
		return states, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &states)
	}
	if err != nil {
		return nil, fmt.Errorf("%s, where deploy keeps the newest ACL version and sequence it saw of each channel, cannot be read (%v); "+
			"restore it from a backup, or delete it to start from what the store holds now (older pointers put back before then go unnoticed)", seenPath(), err)
	}
	return states, nil
}

// raiseSeen raises the floor of channel id to s, field by field, never
// lowering it. It holds a lock while it reads and writes seen.json, so
// that commands run at once lose none of each other's floors.
func raiseSeen(id string, s seen) error {
	if err := os.MkdirAll(configDir(), 0o700); err != nil {
		return err
	}
	unlock, err := lockfile.Lock(seenPath() + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	states, err := readSeen()
	if err != nil {
		return err
	}
	old := states[id]
	states[id] = seen{ACLVersion: max(old.ACLVersion, s.ACLVersion), Sequence: max(old.Sequence, s.Sequence)}
	if states[id] == old {
		return nil
	}
	data, err := json.MarshalIndent(states, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(seenPath(), data, 0o600)
}

// rememberSigned raises this user's floor for a channel to the sequence
// of the latest.json a command just signed and wrote there. Failing to
// does not fail the command, which has written: it warns, and verify
// then trusts only what it saw itself.
func (e *env) rememberSigned(storeURL, app, channel string, sequence int64) {
	id, err := seenID(storeURL, app, channel)
	if err == nil {
		err = raiseSeen(id, seen{Sequence: sequence})
	}
	if err != nil {
		log := e.log()
		log.Warn().Msg(fmt.Sprintf("could not record sequence %d of %s %s in %s (%v): `deploy verify` will refuse a pointer older than it only once it has seen it", sequence, app, channel, seenPath(), err))
	}
}

// rememberACL raises this user's ACL floor for every channel of a store to
// the version of the acl.json a command just signed and wrote there (see
// floorOf), so that verify refuses an older one put back, which may still
// grant what the new one took back. Failing to only warns, as
// rememberSigned does.
func (e *env) rememberACL(storeURL string, version int64) {
	loc, err := parseStore(storeURL)
	if err == nil {
		err = raiseSeen(loc.identity()+" "+manifest.ACLKey, seen{ACLVersion: version})
	}
	if err != nil {
		log := e.log()
		log.Warn().Msg(fmt.Sprintf("could not record ACL version %d in %s (%v): `deploy verify` will refuse an older ACL only once it has seen this one", version, seenPath(), err))
	}
}

package publish

import (
	"context"
	"errors"
	"sync"

	"github.com/cartona/deploy/store"
)

// prestage writes a build's small file objects while the build is being
// zipped, so that the upload does not wait for them afterwards: on a
// local disk, creating a file per content costs about as much as zipping.
//
// It is used only with a store whose batch keeps objects invisible until
// Commit (a [store.Batcher]), because the upload's lease is written after
// zipping and nothing may become visible before it. Each object is planned
// from a listing of the store taken before the lease; putFiles keeps what
// was staged only if the listing it takes under the lease agrees for every
// staged object, and otherwise discards it all and writes as if nothing
// had been staged.
//
// Only files under brotliMinSize whose bytes the zip kept are staged: they
// are most of a web build's files, and they need neither a second read
// nor compression, so staging them adds little to the zip's memory.
type prestage struct {
	p      *Publisher
	ctx    context.Context
	app    string
	batch  store.Batch
	listed chan struct{} // closed once stored or err is set
	stored map[string]int64
	work   chan Content
	seen   map[string]bool // SHA-256s handed out; used by add only
	wg     sync.WaitGroup
	finish sync.Once

	mu     sync.Mutex
	staged map[string]*stagedObject // by SHA-256
	err    error
}

var errStopped = errors.New("upload stopped")

// stagedObject is an object as prestage planned it from its listing, and
// the same object once written.
type stagedObject struct {
	plan fileObject
	done *fileObject
}

// prestage starts staging req's file objects, or returns nil when the
// store cannot keep them invisible or nothing may be written.
func (p *Publisher) prestage(ctx context.Context, req Request) *prestage {
	b, ok := p.Store.(store.Batcher)
	if !ok || req.DryRun {
		return nil
	}
	s := &prestage{p: p, ctx: ctx, app: req.App, batch: b.NewBatch(), listed: make(chan struct{}),
		work: make(chan Content, 1024), seen: map[string]bool{}, staged: map[string]*stagedObject{}}
	go func() {
		defer close(s.listed)
		stored, err := p.storedFiles(ctx, req.App)
		s.mu.Lock()
		s.stored = stored
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}()
	for range putConcurrency {
		s.wg.Add(1)
		go s.worker()
	}
	return s
}

// add stages c if it is small, its bytes were kept, and its content was
// not handed out already. The zip calls it for each file, in order.
func (s *prestage) add(c Content) {
	if c.data == nil || c.Size >= brotliMinSize || s.seen[c.SHA256] {
		return
	}
	s.seen[c.SHA256] = true
	s.work <- c
}

func (s *prestage) worker() {
	defer s.wg.Done()
	<-s.listed
	for c := range s.work {
		if s.failed() {
			continue
		}
		o := newFileObject(s.app, c, s.stored)
		plan := *o
		err := s.p.putObject(s.ctx, s.batch, s.app, o)
		s.mu.Lock()
		if err != nil && s.err == nil {
			s.err = err
		}
		s.staged[c.SHA256] = &stagedObject{plan: plan, done: o}
		s.mu.Unlock()
	}
}

func (s *prestage) failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

// wait stops taking files and waits for those taken.
func (s *prestage) wait() {
	if s == nil {
		return
	}
	s.finish.Do(func() {
		close(s.work)
		s.wg.Wait()
	})
}

// adopt returns the batch holding what was staged, with what it wrote
// recorded in objs, when objs (planned from the store under the lease)
// agree with how each staged object was planned. Otherwise it discards
// what was staged and returns nil. objs must be planned after wait.
func (s *prestage) adopt(objs map[string]*fileObject) store.Batch {
	if s == nil {
		return nil
	}
	s.wait()
	b := s.batch
	s.batch = nil
	ok := s.err == nil
	for sha, st := range s.staged {
		o := objs[sha]
		ok = ok && o != nil && o.rawSize == st.plan.rawSize && o.broken == st.plan.broken && o.brSize == st.plan.brSize
	}
	if !ok {
		b.Close()
		return nil
	}
	for sha, st := range s.staged {
		o := objs[sha]
		o.rawSize, o.brSize, o.written, o.wrote = st.done.rawSize, st.done.brSize, st.done.written, st.done.wrote
	}
	return b
}

// close discards what was staged and not adopted.
func (s *prestage) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.err == nil {
		s.err = errStopped // the workers skip what is left
	}
	s.mu.Unlock()
	s.wait()
	if s.batch != nil {
		s.batch.Close()
	}
}

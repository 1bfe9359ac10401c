package tracker

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// LogWriter buffers the log for a writer such as stderr, so that the
// access log line of a request is a copy in memory rather than a write
// system call, and a slow reader of the log (journald's pipe) never holds
// up answers. Lines of level warn and above are written at once, after
// what is buffered; the others within the interval given to NewLogWriter,
// and by Close. A crash loses at most that interval of info lines.
type LogWriter struct {
	w      io.Writer
	mu     sync.Mutex // guards buf and closed
	buf    []byte
	spare  []byte // the buffer last written out, reused
	closed bool
	wmu    sync.Mutex // serialises writes to w, in order
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// logBufferMax is the size at which the buffer is written out at once.
const logBufferMax = 256 << 10

// NewLogWriter writes what is buffered to w every interval, until Close.
func NewLogWriter(w io.Writer, interval time.Duration) *LogWriter {
	l := &LogWriter{w: w, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				l.flush(nil)
			case <-l.stop:
				return
			}
		}
	}()
	return l
}

// Write buffers p.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return len(p), l.flush(p)
	}
	l.buf = append(l.buf, p...)
	full := len(l.buf) >= logBufferMax
	l.mu.Unlock()
	if full {
		l.flush(nil)
	}
	return len(p), nil
}

// WriteLevel writes p at once if level is warn or above, else buffers it.
func (l *LogWriter) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	if level < zerolog.WarnLevel || level == zerolog.NoLevel {
		return l.Write(p)
	}
	return len(p), l.flush(p)
}

// flush writes what is buffered, then p.
func (l *LogWriter) flush(p []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	buf := l.buf
	l.buf, l.spare = l.spare, nil
	l.mu.Unlock()
	buf = append(buf, p...)
	if len(buf) == 0 {
		return nil
	}
	_, err := l.w.Write(buf)
	l.mu.Lock()
	l.spare = buf[:0]
	l.mu.Unlock()
	return err
}

// Close writes what is buffered and stops the periodic writes. Lines
// logged after Close are written at once.
func (l *LogWriter) Close() error {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
	})
	return l.flush(nil)
}

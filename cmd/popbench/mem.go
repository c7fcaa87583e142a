package main

import (
	"runtime/metrics"
	"sync"
	"time"
)

// memReport is the bridge process's memory, as the child reports it.
type memReport struct {
	// PeakRSS is the kernel's high-water mark of the resident set (VmHWM on
	// Linux, ru_maxrss elsewhere), or the sampled peak when neither exists.
	PeakRSS int64  `json:"peak_rss"`
	Source  string `json:"source"` // where PeakRSS comes from
	RSS     int64  `json:"rss"`    // current resident set (0 if unknown)
	// Sampled peaks (every 10 ms): anonymous and file-backed resident
	// memory (Linux; the file part is mostly bbolt's mmap and is
	// reclaimable), and the Go heap's live objects.
	PeakAnon int64 `json:"peak_anon"`
	PeakFile int64 `json:"peak_file"`
	PeakHeap int64 `json:"peak_heap"`
}

// procMem is one reading of the process's own memory.
type procMem struct {
	HWM, RSS, Anon, File int64
}

// memSampler tracks peaks between resets.
type memSampler struct {
	mu                                    sync.Mutex
	peakRSS, peakAnon, peakFile, peakHeap int64
	stop                                  chan struct{}
	done                                  chan struct{}

	// onPeak, if set before the first new peak, is called from the
	// sampling goroutine when the Go heap grew 5% past the last call (at
	// most once a second): the child writes its heap profile there.
	onPeak   func()
	lastPeak int64
	lastCall time.Time
}

func startMemSampler() *memSampler {
	s := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

var heapMetric = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

func (s *memSampler) sample() {
	m, _ := readProcMem()
	metrics.Read(heapMetric)
	heap := int64(0)
	if heapMetric[0].Value.Kind() == metrics.KindUint64 {
		heap = int64(heapMetric[0].Value.Uint64())
	}
	s.mu.Lock()
	s.peakRSS = max(s.peakRSS, m.RSS)
	s.peakAnon = max(s.peakAnon, m.Anon)
	s.peakFile = max(s.peakFile, m.File)
	s.peakHeap = max(s.peakHeap, heap)
	call := s.onPeak != nil && heap > s.lastPeak+s.lastPeak/20 && time.Since(s.lastCall) > time.Second
	if call {
		s.lastPeak, s.lastCall = heap, time.Now()
	}
	s.mu.Unlock()
	if call {
		s.onPeak()
	}
}

// reset starts a new measurement: the kernel's peak (where it can be
// reset) and the sampled peaks.
func (s *memSampler) reset() error {
	err := resetPeak()
	s.mu.Lock()
	s.peakRSS, s.peakAnon, s.peakFile, s.peakHeap = 0, 0, 0, 0
	s.mu.Unlock()
	s.sample()
	return err
}

func (s *memSampler) report() memReport {
	s.sample()
	m, ok := readProcMem()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := memReport{RSS: m.RSS, PeakAnon: s.peakAnon, PeakFile: s.peakFile, PeakHeap: s.peakHeap}
	if ok && m.HWM > 0 {
		r.PeakRSS, r.Source = m.HWM, peakSource
	} else {
		r.PeakRSS, r.Source = s.peakRSS, "sampled every 10 ms"
	}
	return r
}

func (s *memSampler) close() {
	close(s.stop)
	<-s.done
}

package control

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSSERoundTrip: what ServeSSE writes, ReadSSE reads back.
func TestSSERoundTrip(t *testing.T) {
	ch := make(chan Event, 3)
	ch <- Event{Type: "dashboard"}
	ch <- Event{Type: "migration", Migration: &MigrationState{State: "running", Done: 5, Total: 9, Folder: "Local/受信トレイ\nx"}}
	ch <- Event{Type: "verify", Verify: &VerifyState{State: "done", Missing: 2}}
	close(ch)
	rec := httptest.NewRecorder()
	ServeSSE(rec, httptest.NewRequest("GET", "/events", nil), ch)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	var got []Event
	if err := ReadSSE(rec.Body, func(ev Event) bool { got = append(got, ev); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Type != "dashboard" || got[1].Migration.Folder != "Local/受信トレイ\nx" || got[1].Migration.Done != 5 || got[2].Verify.Missing != 2 {
		t.Fatalf("read back %+v", got)
	}
}

// FuzzReadSSE: any stream reads without a panic, and events come only
// from data lines.
func FuzzReadSSE(f *testing.F) {
	f.Add([]byte(": popbridge events\n\nevent: dashboard\ndata: {\"type\":\"dashboard\"}\n\n"))
	f.Add([]byte("event: migration\ndata: {\"type\":\"migration\",\n\ndata: \"migration\":{\"state\":\"running\"}}\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ReadSSE(bytes.NewReader(data), func(ev Event) bool {
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatalf("event %+v does not marshal: %v", ev, err)
			}
			if !strings.Contains(string(data), "data:") {
				t.Fatalf("event %s from a stream without data lines", b)
			}
			return true
		})
	})
}

package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	want := Config{Relays: []string{"https://r1:8443", "https://r2:8443"}, JoinToken: "tok", TaskTimeout: time.Hour}
	if err := SaveConfig(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Relays, ",") != strings.Join(want.Relays, ",") || got.JoinToken != want.JoinToken || got.TaskTimeout != want.TaskTimeout {
		t.Fatalf("LoadConfig = %+v, want %+v", got, want)
	}
}

func TestConfigRejects(t *testing.T) {
	dir := t.TempDir()
	if err := SaveConfig(dir, Config{JoinToken: "t"}); err == nil {
		t.Fatal("config without relays saved")
	}
	for name, body := range map[string]string{
		"unknown field": `{"relays":["https://r"],"join_token":"t","extra":1}`,
		"no token":      `{"relays":["https://r"]}`,
		"not json":      `relays=r`,
		"too big":       `{"relays":["` + strings.Repeat("r", maxConfigBytes) + `"],"join_token":"t"}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadConfig(dir); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

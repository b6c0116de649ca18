package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestControlSocket(t *testing.T) {
	env := map[string]string{"RUN": "/var/run", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	services := "\n[services.a]\ncommand = \"a\"\n"
	tests := []struct {
		name, src string
		want      string
		wantErr   string // part of the message; the error names the file
	}{
		{"absent", "log_level = \"info\"\n" + services, "/run/tend.sock", ""},
		{"empty file", "", "/run/tend.sock", ""},
		{"set", "control_socket = \"/tmp/t.sock\"\n" + services, "/tmp/t.sock", ""},
		{"disabled", "control_socket = \"\"\n" + services, "", ""},
		{"expanded", "control_socket = \"${RUN}/tend.sock\"\n", "/var/run/tend.sock", ""},
		{"default of a variable", "control_socket = \"${EMPTY:-/srv}/t.sock\"\n", "/srv/t.sock", ""},
		{"literal and multi-line strings", "control_socket = '''\n/x/${RUN}'''\n", "/x//var/run", ""},
		{"quoted key", "\"control_socket\" = '/q.sock'\n", "/q.sock", ""},
		{"only the top level counts", "[services.a]\ncontrol_socket = \"/no\"\n", "/run/tend.sock", ""},
		{"a header inside a string does not end the top level", "hostname = \"\"\"\n[services.a]\n\"\"\"\ncontrol_socket = \"/late.sock\"\n", "/late.sock", ""},
		// The services are not read: what is wrong with them does not matter.
		{"broken services", "control_socket = \"/s\"\n[services.a]\ncommand = [\n[services.b]\nx = " +
			strings.Repeat("{a=", 100) + "\n", "/s", ""},
		{"not a string", "log_level = \"x\"\ncontrol_socket = 5\n", "", "cfg.toml:2: control_socket: must be a string, not an integer"},
		{"bad expansion", "control_socket = \"${RUN\"\n", "", "cfg.toml:1: control_socket: unterminated"},
		{"too long", "control_socket = \"/" + strings.Repeat("x", 107) + "\"\n", "", "shorter than 108 bytes"},
		{"syntax error at the top", "control_socket = \"/s\"\nlog_level = \n" + services, "", "cfg.toml:2: log_level: TOML syntax"},
		{"nesting at the top", "a = " + strings.Repeat("[", 20) + "\ncontrol_socket = \"/s\"\n", "", "cfg.toml:1: nesting goes past"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cfg.toml")
			if err := os.WriteFile(path, []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ControlSocket(path, lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), path) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
			// Where Load succeeds, it agrees.
			if cfg, err := Load(path, lookup, WithUserDB(path, path)); err == nil && cfg.ControlSocket != got {
				t.Errorf("Load says %q", cfg.ControlSocket)
			}
		})
	}

	if _, err := ControlSocket(filepath.Join(t.TempDir(), "missing.toml"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v", err)
	}
}

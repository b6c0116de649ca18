package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestControlSocket(t *testing.T) {
	env := map[string]string{"RUN": "/var/run", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	services := "\n[services.a]\ncommand = \"a\"\n"
	def := DefaultControlSocket(lookup).Path // /run/tend.sock as root
	tests := []struct {
		name, src string
		want      string
		wantErr   string // part of the message; the error names the file
	}{
		{"absent", "log_level = \"info\"\n" + services, def, ""},
		{"empty file", "", def, ""},
		{"set", "control_socket = \"/tmp/t.sock\"\n" + services, "/tmp/t.sock", ""},
		{"disabled", "control_socket = \"\"\n" + services, "", ""},
		{"expanded", "control_socket = \"${RUN}/tend.sock\"\n", "/var/run/tend.sock", ""},
		{"default of a variable", "control_socket = \"${EMPTY:-/srv}/t.sock\"\n", "/srv/t.sock", ""},
		{"literal and multi-line strings", "control_socket = '''\n/x/${RUN}'''\n", "/x//var/run", ""},
		{"quoted key", "\"control_socket\" = '/q.sock'\n", "/q.sock", ""},
		{"only the top level counts", "[services.a]\ncontrol_socket = \"/no\"\n", def, ""},
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
			got, place, err := ControlSocket(path, lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), path) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
			if byDefault := tt.want == def; (place != nil) != byDefault || place != nil && place.Path != got {
				t.Fatalf("the default's place: %+v; want one (for %q) only when control_socket is absent", place, got)
			}
			// Where Load succeeds, it agrees.
			if cfg, err := Load(path, lookup, WithUserDB(path, path)); err == nil && (cfg.ControlSocket != got || (cfg.DefaultSocket != nil) != (place != nil)) {
				t.Errorf("Load says %q, %+v", cfg.ControlSocket, cfg.DefaultSocket)
			}
		})
	}

	if _, _, err := ControlSocket(filepath.Join(t.TempDir(), "missing.toml"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v", err)
	}
}

// fakeInfo is what a fake file system's stat says of a path.
type fakeInfo struct {
	mode fs.FileMode
	uid  uint32
}

func (f fakeInfo) Name() string       { return "x" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return &syscall.Stat_t{Uid: f.uid} }

// TestDefaultControlSocket: the path tend and tend ctl choose alike, from
// the effective uid, XDG_RUNTIME_DIR and what is at that path.
func TestDefaultControlSocket(t *testing.T) {
	files := map[string]fs.FileInfo{
		"/run/user/1000":      fakeInfo{fs.ModeDir | 0o700, 1000},
		"/run/user/1000-open": fakeInfo{fs.ModeDir | 0o777, 1000},
		"/run/user/0":         fakeInfo{fs.ModeDir | 0o700, 0},
		"/run/user/file":      fakeInfo{0o600, 1000},
	}
	stat := func(path string) (fs.FileInfo, error) {
		if fi, ok := files[path]; ok {
			return fi, nil
		}
		return nil, &fs.PathError{Op: "stat", Path: path, Err: syscall.ENOENT}
	}
	long := "/run/" + strings.Repeat("x", 100)
	files[long] = fakeInfo{fs.ModeDir | 0o700, 1000}
	cases := []struct {
		name  string
		euid  int
		xdg   string // "" = unset
		path  string
		dir   string
		tried []string
	}{
		{"root", 0, "", "/run/tend.sock", "", nil},
		{"root, XDG_RUNTIME_DIR set", 0, "/run/user/0", "/run/tend.sock", "", nil},
		{"XDG_RUNTIME_DIR of the user's own", 1000, "/run/user/1000", "/run/user/1000/tend.sock", "", nil},
		{"XDG_RUNTIME_DIR with a trailing slash", 1000, "/run/user/1000/", "/run/user/1000/tend.sock", "", nil},
		{"no XDG_RUNTIME_DIR", 1000, "", "/tmp/tend-1000/tend.sock", "/tmp/tend-1000",
			[]string{"/run/tend.sock (root's)", "$XDG_RUNTIME_DIR (it is not set)"}},
		{"XDG_RUNTIME_DIR of another user", 1000, "/run/user/0", "/tmp/tend-1000/tend.sock", "/tmp/tend-1000",
			[]string{"/run/tend.sock (root's)", "$XDG_RUNTIME_DIR (/run/user/0 is owned by uid 0, not by uid 1000)"}},
		{"XDG_RUNTIME_DIR that others may write", 1000, "/run/user/1000-open", "/tmp/tend-1000/tend.sock", "/tmp/tend-1000",
			[]string{"/run/tend.sock (root's)", "$XDG_RUNTIME_DIR (/run/user/1000-open may be written by others (mode 0777))"}},
		{"XDG_RUNTIME_DIR that is a file", 1000, "/run/user/file", "/tmp/tend-1000/tend.sock", "/tmp/tend-1000",
			[]string{"/run/tend.sock (root's)", "$XDG_RUNTIME_DIR (/run/user/file is not a directory)"}},
		{"XDG_RUNTIME_DIR that is not there", 1000, "/run/user/1001", "/tmp/tend-1000/tend.sock", "/tmp/tend-1000",
			[]string{"/run/tend.sock (root's)", "$XDG_RUNTIME_DIR (/run/user/1001: no such file or directory)"}},
		{"XDG_RUNTIME_DIR relative", 65534, "run", "/tmp/tend-65534/tend.sock", "/tmp/tend-65534",
			[]string{"/run/tend.sock (root's)", `$XDG_RUNTIME_DIR ("run" is not an absolute path)`}},
		{"XDG_RUNTIME_DIR too long for a socket", 1000, long, "/tmp/tend-1000/tend.sock", "/tmp/tend-1000",
			[]string{"/run/tend.sock (root's)", "$XDG_RUNTIME_DIR (" + long + "/tend.sock would be 115 bytes, longer than a unix socket's 107)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) {
				if k == "XDG_RUNTIME_DIR" && tc.xdg != "" {
					return tc.xdg, true
				}
				return "", false
			}
			got := defaultControlSocket(tc.euid, lookup, stat)
			if got.Path != tc.path || got.Dir != tc.dir || !slices.Equal(got.Tried, tc.tried) || (tc.euid != 0 && got.UID != tc.euid) {
				t.Fatalf("got %+v\nwant path %s, dir %q, tried %q", got, tc.path, tc.dir, tc.tried)
			}
		})
	}
	p := defaultControlSocket(1000, func(string) (string, bool) { return "", false }, stat)
	if want := "the default for uid 1000: not /run/tend.sock (root's), not $XDG_RUNTIME_DIR (it is not set), so /tmp/tend-1000/tend.sock"; p.Choice() != want {
		t.Errorf("Choice() = %q\nwant %q", p.Choice(), want)
	}
}

// TestPrivateDir: the directory of a default socket in /tmp, made or
// checked, on a real file system (as root, to make others' directories).
func TestPrivateDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it makes directories of other users")
	}
	const uid = 4242
	base := t.TempDir()
	other := filepath.Join(base, "other")
	open := filepath.Join(base, "open")
	link := filepath.Join(base, "link")
	file := filepath.Join(base, "file")
	mine := filepath.Join(base, "mine")
	for _, d := range []string{other, open, mine} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chown(open, uid, uid))
	must(os.Chmod(open, 0o777))
	must(os.Chown(mine, uid, uid))
	must(os.Symlink(mine, link))
	must(os.WriteFile(file, nil, 0o600))
	must(os.Chown(file, uid, uid))
	cases := []struct {
		name   string
		dir    string
		create bool
		want   string // part of the error; "" = none
	}{
		{"made before, by the user", mine, true, ""},
		{"checked", mine, false, ""},
		{"not there, only checked", filepath.Join(base, "none"), false, ""},
		{"owned by another user", other, true, "is owned by uid 0, not by uid 4242, so it is not used: another user may have made it"},
		{"owned by another user, only checked", other, false, "is owned by uid 0, not by uid 4242"},
		{"writable by others", open, true, "may be written by others (mode 0777)"},
		{"a symbolic link to the user's own", link, true, "is a symbolic link"},
		{"a file", file, false, "is not a directory"},
		{"its parent is not there", filepath.Join(base, "none", "x"), true, "no such file or directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := PrivateDir(tc.dir, uid, tc.create)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error with %q", err, tc.want)
			}
		})
	}
	// What it makes is the maker's own (tend's: the uid it checks for is
	// its own), mode 0700.
	made := filepath.Join(base, "new")
	if err := PrivateDir(made, os.Geteuid(), true); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(made)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o700 || !fi.IsDir() || int(st.Uid) != os.Geteuid() {
		t.Fatalf("made %v owned by %d", fi.Mode(), st.Uid)
	}
	if err := PrivateDir(made, os.Geteuid(), true); err != nil {
		t.Fatalf("made again: %v", err)
	}
}

package config

import (
	"strings"
	"testing"
)

// Issue 18: `tend check` accepted a NUL byte in a command argument (and in
// an environment value); every start then failed with EINVAL, exit 126, in
// a crash loop. Every string that reaches exec or a system call is
// refused with its file, line and key, once.
func TestNULIsRefused(t *testing.T) {
	const svc = "[services.app]\n"
	const cmd = svc + "command = [\"true\"]\n"
	for _, c := range []struct {
		name string
		src  string
		env  map[string]string
		line int
		key  string
	}{
		{"command argument", svc + `command = ["echo", "a\u0000b"]`, nil, 2, "services.app.command"},
		{"command program", svc + `command = ["/bin/true\u0000", "x"]`, nil, 2, "services.app.command"},
		{"command string", svc + `command = "echo a\u0000b"`, nil, 2, "services.app.command"},
		{"command, TOML 1.1 escape", svc + `command = ["echo", "a\x00b"]`, nil, 2, "services.app.command"},
		{"command, from ${VAR}", svc + `command = ["echo", "${ARG}"]`, map[string]string{"ARG": "a\x00b"}, 2, "services.app.command"},
		{"ready exec", cmd + "[services.app.ready]\nexec = [\"probe\", \"\\u0000\"]", nil, 4, "services.app.ready.exec"},
		{"health exec", cmd + "[services.app.health]\nexec = \"probe \\u0000\"", nil, 4, "services.app.health.exec"},
		{"environment value", cmd + `environment = { A = "1", X = "a\u0000b" }`, nil, 3, "services.app.environment.X"},
		{"environment value, table", cmd + "[services.app.environment]\nA = \"1\"\nX = \"\\u0000\"", nil, 5, "services.app.environment.X"},
		{"environment name", cmd + `environment = { "A\u0000B" = "1" }`, nil, 3, `services.app.environment."A\u0000B"`},
		{"working_dir", cmd + `working_dir = "/srv\u0000"`, nil, 3, "services.app.working_dir"},
		{"user", cmd + `user = "app\u0000"`, nil, 3, "services.app.user"},
		{"group", cmd + `group = "app\u0000"`, nil, 3, "services.app.group"},
		{"output", cmd + `output = "/var/log/app\u0000.log"`, nil, 3, "services.app.output"},
		{"depends_on", cmd + `depends_on = ["db\u0000"]`, nil, 3, "services.app.depends_on"},
		{"stop_signal", cmd + `stop_signal = "TERM\u0000"`, nil, 3, "services.app.stop_signal"},
		{"min_uptime", cmd + `min_uptime = "1s\u0000"`, nil, 3, "services.app.min_uptime"},
		{"ready file", cmd + "[services.app.ready]\nfile = \"/run/ready\\u0000\"", nil, 4, "services.app.ready.file"},
		{"ready tcp", cmd + "[services.app.ready]\ntcp = \"127.0.0.1:80\\u0000\"", nil, 4, "services.app.ready.tcp"},
		{"health http", cmd + "[services.app.health]\nhttp = \"http://127.0.0.1/\\u0000\"", nil, 4, "services.app.health.http"},
		{"control_socket", `control_socket = "/run/tend.sock\u0000"`, nil, 1, "control_socket"},
		{"metrics_listen", `metrics_listen = "127.0.0.1:9100\u0000"`, nil, 1, "metrics_listen"},
		{"health_listen", `health_listen = "0.0.0.0:8080\u0000"`, nil, 1, "health_listen"},
		{"log_level", `log_level = "info\u0000"`, nil, 1, "log_level"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.src, c.env)
			checkErrors(t, err, []want{{c.line, c.key, "has a NUL byte"}})
			if err == nil {
				return
			}
			if msg := err.Error(); !strings.Contains(msg, "remove the NUL") || !strings.Contains(msg, `\x00`) {
				t.Errorf("the message does not show the NUL or say what to change: %s", msg)
			}
		})
	}
}

func TestNULMessage(t *testing.T) {
	_, err := parse(t, "[services.app]\ncommand = [\"echo\", \"a\\u0000b\"]\n", nil)
	const wantMsg = `tend.toml:2: services.app.command: "a\x00b" has a NUL byte (\u0000) at byte 1: the kernel ends every argument, environment variable and path at a NUL, so no program can be given this value; remove the NUL`
	if err == nil || err.Error() != wantMsg {
		t.Fatalf("got  %v\nwant %s", err, wantMsg)
	}
	// A long value is shown around its NUL, not whole.
	long := strings.Repeat("x", 5000) + `\u0000` + strings.Repeat("y", 5000)
	_, err = parse(t, "[services.app]\ncommand = [\"echo\", \""+long+"\"]\n", nil)
	checkErrors(t, err, []want{{2, "services.app.command", `..."xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\x00yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"... has a NUL byte (\u0000) at byte 5000`}})
	if n := len(err.Error()); n > 400 {
		t.Errorf("the message for a 10 kB value is %d bytes long", n)
	}
	// The name of a variable says that it is the name.
	_, err = parse(t, "[services.app]\ncommand = \"true\"\nenvironment = { \"A\\u0000\" = \"1\", \"B=C\" = \"2\", \"\" = \"3\" }\n", nil)
	checkErrors(t, err, []want{
		{3, `services.app.environment.""`, "needs a name"},
		{3, `services.app.environment."A\u0000"`, `the name "A\x00" has a NUL byte`},
		{3, `services.app.environment."B=C"`, `the name "B=C" has a "="`},
	})
}

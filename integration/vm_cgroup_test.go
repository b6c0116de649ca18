package integration

import (
	"regexp"
	"strings"
	"testing"
)

// A service whose main process setsid's a child that ignores SIGTERM: in a
// VM tend owns the cgroup tree, so the child is the service's whatever it
// does, and a stop ends it after stop_timeout (cgroup.kill), and only then
// is the service stopped, with cgroup.events at "populated 0".
const vmCgroupConfig = `shutdown_timeout = "5s"

[services.web]
command = ["/bin/sh", "-c", "setsid /bin/sh -c 'trap \"\" TERM; echo $$ >/run/escapee; while :; do sleep 1; done' & while :; do sleep 1; done"]
stop_timeout = "1s"
`

const vmCgroupMain = `until /init ctl status web 2>/dev/null | grep -q running && [ -s /run/escapee ]; do sleep 0.1; done
e=$(cat /run/escapee)
echo "main: escapee=$e session=$(awk '{print $6}' /proc/$e/stat) main=$(/init ctl status --json web | grep -o '"pid": [0-9]*')"
echo "main: tracking=$(/init ctl status --json web | grep -o '"tracking": "[a-z]*"') $(/init ctl status --json web | grep -o '"cgroup": "[^"]*"')"
echo "main: procs=$(cat /sys/fs/cgroup/web.service/cgroup.procs | tr '\n' ' ')"
/init ctl stop web >/dev/null
echo "main: after stop: $(/init ctl status web | grep -o 'stopped\|stopping') escapee-alive=$(kill -0 $e 2>/dev/null && echo yes || echo no)"
until /init ctl status web | grep -q stopped; do sleep 0.05; done
echo "main: stopped: escapee-alive=$(kill -0 $e 2>/dev/null && echo yes || echo no) $(grep populated /sys/fs/cgroup/web.service/cgroup.events)"
exit 0
`

func TestVMCgroupStopsWholeTree(t *testing.T) {
	kernel := needVM(t)
	t.Parallel()
	bt := boot{
		init: tendBin,
		files: map[string]string{
			"etc/tend.toml": vmCgroupConfig,
			"etc/main.sh":   vmCgroupMain,
		},
		args: "TEND_CONFIG=/etc/tend.toml -- /bin/sh /etc/main.sh",
	}.run(t, kernel)
	console := bt.wait(t)
	t.Logf("console:\n%s", console)
	noKernelPanic(t, console)
	mustContain(t, console,
		"each service runs in its own cgroup under /sys/fs/cgroup",
		`main: tracking="tracking": "cgroup" "cgroup": "/sys/fs/cgroup/web.service"`,
		"main: after stop: stopping escapee-alive=yes",
		"sending SIGKILL to its process group and every other process of it",
		"main: stopped: escapee-alive=no populated 0",
		"tend: exit status 0",
		"reboot: Power down",
	)
	// The escapee left the service's session: only the cgroup says whose it is.
	m := regexp.MustCompile(`main: escapee=(\d+) session=(\d+) main="pid": (\d+)`).FindStringSubmatch(console)
	if m == nil {
		t.Fatalf("no escapee line on the console")
	}
	if m[2] == m[3] {
		t.Errorf("the escapee is in the main process's session %s: it did not leave it", m[2])
	}
	if procs := regexp.MustCompile(`main: procs=([0-9 ]+)`).FindStringSubmatch(console); procs == nil || !strings.Contains(" "+procs[1], " "+m[1]+" ") {
		t.Errorf("the escapee %s is not in web's cgroup: %v", m[1], procs)
	}
}

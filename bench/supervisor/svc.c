/*
 * The supervised service of the benchmark. Built static (no dynamic loader),
 * so a restart costs the supervisor's work plus one fork/exec and little else.
 *
 *   svc exit FILE [TAG]      append "S <pid> <ns> [TAG]" on start and
 *                            "E <pid> <ns> [TAG]" just before _exit(0): the
 *                            restart-latency service.
 *   svc pause FILE [TAG [FD]]
 *                            append the S line (and with FD, write "\n" to
 *                            fd FD, s6's readiness notification), then sleep
 *                            until killed: one of the 1,000 (or 10,000) idle
 *                            services.
 *   svc crash FILE TAG DIR [FD]
 *                            the mass-crash service: append the S line (and
 *                            with FD, write "\n" to fd FD: s6's readiness
 *                            notification), read the generation G from
 *                            DIR/gen, wait for a shared lock on DIR/lock.G
 *                            (the driver holds it exclusively), then append
 *                            the E line and _exit(1). The driver releases the
 *                            lock: every waiter wakes at once and exits
 *                            non-zero.
 *   svc RUNFILE [...]        the arguments are on the second line of RUNFILE,
 *                            space-separated: so an s6 or runit `run` file
 *                            can be "#!/path/to/svc" and the arguments, and
 *                            the kernel execs svc directly (no /bin/sh).
 *
 * ns is CLOCK_MONOTONIC. Each line is one write(2) to an O_APPEND descriptor,
 * so concurrent writers never interleave within a line. TAG names the service
 * (and its version, for the reload test).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static const char *tag = "";

static void stamp(int fd, char kind)
{
	struct timespec ts;
	char buf[160];
	int n;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	n = snprintf(buf, sizeof buf, "%c %d %lld%s%s\n", kind, (int)getpid(),
		     (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec,
		     *tag ? " " : "", tag);
	if (n <= 0 || n >= (int)sizeof buf || write(fd, buf, n) != n)
		_exit(3);
}

/* notify writes s6's readiness line to fd and closes it. */
static void notify(int fd)
{
	if (write(fd, "\n", 1) != 1)
		_exit(4);
	close(fd);
}

/* runfile reads the second line of path into buf and splits it into av. */
static int runfile(const char *path, char *buf, size_t size, char **av, int max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ac = 0;
	ssize_t n;
	char *p, *tok, *save;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strchr(buf, '\n');
	if (!p)
		return -1;
	p++;
	p[strcspn(p, "\n")] = 0;
	for (tok = strtok_r(p, " ", &save); tok && ac < max; tok = strtok_r(NULL, " ", &save))
		av[ac++] = tok;
	return ac;
}

static void crash_wait(const char *dir)
{
	char path[4096], gen[32];
	int fd, n;

	snprintf(path, sizeof path, "%s/gen", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		_exit(4);
	n = read(fd, gen, sizeof gen - 1);
	close(fd);
	if (n <= 0)
		_exit(4);
	gen[n] = 0;
	gen[strcspn(gen, "\n")] = 0;
	snprintf(path, sizeof path, "%s/lock.%s", dir, gen);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		_exit(4);
	while (flock(fd, LOCK_SH) < 0)
		if (errno != EINTR)
			_exit(4);
}

int main(int argc, char **argv)
{
	char buf[4096], *av[8];
	const char *mode, *file;
	int fd;

	if (argc >= 2 && strcmp(argv[1], "exit") && strcmp(argv[1], "pause") &&
	    strcmp(argv[1], "crash")) {
		/* A run file with "#!svc" and the arguments on line 2 (the
		 * supervisor may pass more arguments after it: ignored). */
		int ac = runfile(argv[1], buf, sizeof buf, av + 1, 6);

		if (ac < 0)
			_exit(5);
		av[0] = argv[0];
		argc = ac + 1;
		argv = av;
	}
	if (argc < 3 || argc > 6)
		goto usage;
	mode = argv[1];
	file = argv[2];
	if (argc >= 4)
		tag = argv[3];
	if (strcmp(mode, "crash") == 0) {
		if (argc < 5)
			goto usage;
	} else if (strcmp(mode, "pause") == 0) {
		if (argc > 5)
			goto usage;
	} else if (strcmp(mode, "exit") || argc > 4) {
		goto usage;
	}
	fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		_exit(3);
	stamp(fd, 'S');
	if ((mode[0] == 'c' && argc == 6) || (mode[0] == 'p' && argc == 5))
		notify(atoi(argv[argc - 1]));
	switch (mode[0]) {
	case 'e':
		stamp(fd, 'E');
		_exit(0);
	case 'c':
		crash_wait(argv[4]);
		stamp(fd, 'E');
		_exit(1);
	}
	for (;;)
		pause(); /* default SIGTERM action ends it */
usage:
	fprintf(stderr, "usage: svc exit FILE [TAG] | svc pause FILE [TAG [FD]] | svc crash FILE TAG DIR [FD] | svc RUNFILE\n");
	return 2;
}

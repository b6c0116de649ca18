/*
 * The supervised service of the benchmark. Built static (no dynamic loader),
 * so a restart costs the supervisor's work plus one fork/exec and little else.
 *
 *   svc exit FILE    append "S <pid> <ns>" on start and "E <pid> <ns>" just
 *                    before _exit(0): the restart-latency service.
 *   svc pause FILE   append "S <pid> <ns>" on start, then sleep until killed:
 *                    one of the 1,000 idle services.
 *
 * ns is CLOCK_MONOTONIC. Each line is one write(2) to an O_APPEND descriptor,
 * so concurrent writers never interleave within a line.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void stamp(int fd, char kind)
{
	struct timespec ts;
	char buf[64];
	int n;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	n = snprintf(buf, sizeof buf, "%c %d %lld\n", kind, (int)getpid(),
		     (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	if (write(fd, buf, n) != n)
		_exit(3);
}

int main(int argc, char **argv)
{
	int fd;

	if (argc != 3 || (strcmp(argv[1], "exit") && strcmp(argv[1], "pause"))) {
		fprintf(stderr, "usage: svc exit|pause FILE\n");
		return 2;
	}
	fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		_exit(3);
	stamp(fd, 'S');
	if (argv[1][0] == 'e') {
		stamp(fd, 'E');
		_exit(0);
	}
	for (;;)
		pause(); /* default SIGTERM action ends it */
}

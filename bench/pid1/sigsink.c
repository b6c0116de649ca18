// sigsink FIFO: the init's child in the SIGUSR1 forwarding benchmark.
// Blocks SIGUSR1 and takes it with sigwaitinfo (no handler, so the receipt
// time is not skewed by signal-frame setup), writing one 8-byte
// CLOCK_MONOTONIC timestamp (ns) per signal to FIFO. A zero timestamp is
// written first as the "ready" marker. Exits on SIGTERM/SIGINT/SIGHUP or when
// the reader goes away.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: sigsink FIFO\n");
		return 2;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	// Block before announcing readiness, so no SIGUSR1 can hit the default
	// (fatal) action.
	if (sigprocmask(SIG_SETMASK, &set, NULL) != 0) {
		perror("sigprocmask");
		return 1;
	}
	signal(SIGPIPE, SIG_DFL);
	int fd = open(argv[1], O_WRONLY);
	if (fd < 0) {
		perror("open fifo");
		return 1;
	}
	int64_t t = 0;
	if (write(fd, &t, sizeof t) != sizeof t)
		return 1;
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig < 0)
			continue; // EINTR
		t = now_ns();
		if (sig != SIGUSR1)
			return 0;
		if (write(fd, &t, sizeof t) != sizeof t)
			return 0;
	}
}

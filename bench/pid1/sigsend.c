// sigsend PID FIFO COUNT GAP_US WARMUP: the driver of the SIGUSR1 forwarding
// benchmark. Sends SIGUSR1 to PID (the init) and waits for sigsink's receipt
// timestamp on FIFO before sending the next one (ping-pong), so signals can
// never coalesce in the init or in the child; GAP_US of idle time separates
// rounds so each one starts from the init's idle state. latency = receipt -
// send, both CLOCK_MONOTONIC. Prints "p50_us p99_us mean_us max_us n lost".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

// read8 reads one 8-byte record within timeout_ms; 1 = got it, 0 = timeout,
// -1 = EOF/error.
static int read8(int fd, int64_t *v, int timeout_ms) {
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return 0;
	if (r < 0 || !(p.revents & POLLIN))
		return -1;
	return read(fd, v, sizeof *v) == sizeof *v ? 1 : -1;
}

static int cmp64(const void *a, const void *b) {
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv) {
	if (argc != 6) {
		fprintf(stderr, "usage: sigsend PID FIFO COUNT GAP_US WARMUP\n");
		return 2;
	}
	pid_t pid = atoi(argv[1]);
	int count = atoi(argv[3]), warmup = atoi(argv[5]);
	long gap_us = atol(argv[4]);
	// O_NONBLOCK so a sink that never starts cannot hang us in open().
	int fd = open(argv[2], O_RDONLY | O_NONBLOCK);
	if (fd < 0) {
		perror("open fifo");
		return 1;
	}
	int64_t v;
	if (read8(fd, &v, 10000) != 1) {
		fprintf(stderr, "sigsend: sink never became ready\n");
		return 1;
	}
	fcntl(fd, F_SETFL, 0);
	int64_t *lat = calloc(count, sizeof *lat);
	int n = 0, lost = 0;
	struct timespec gap = {gap_us / 1000000, (gap_us % 1000000) * 1000};
	for (int i = -warmup; i < count; i++) {
		nanosleep(&gap, NULL);
		int64_t t0 = now_ns();
		if (kill(pid, SIGUSR1) != 0) {
			perror("kill");
			return 1;
		}
		int r = read8(fd, &v, 1000);
		if (r < 0) {
			fprintf(stderr, "sigsend: sink went away\n");
			return 1;
		}
		if (r == 0) {
			// Lost (or >1 s late): drain a late receipt so the next round
			// is not paired with it.
			lost++;
			while (read8(fd, &v, 200) == 1)
				;
			continue;
		}
		if (i >= 0)
			lat[n++] = v - t0;
	}
	if (n == 0) {
		printf("nan nan nan nan 0 %d\n", lost);
		return 0;
	}
	qsort(lat, n, sizeof *lat, cmp64);
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += lat[i];
	// Nearest-rank percentiles.
	int i50 = (n * 50 + 99) / 100 - 1, i99 = (n * 99 + 99) / 100 - 1;
	printf("%.1f %.1f %.1f %.1f %d %d\n", lat[i50] / 1e3, lat[i99] / 1e3,
	       sum / n / 1e3, lat[n - 1] / 1e3, n, lost);
	return 0;
}

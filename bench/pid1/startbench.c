// startbench RUNS WARMUP CMD...: wall time of running each CMD (a string split
// on spaces, no shell) to completion, stdin/stdout/stderr on /dev/null.
// Runs are interleaved round-robin, with the starting command rotated every
// round, so load that drifts during the benchmark (shared or virtual
// machines) hits every command alike; with hyperfine's one-command-at-a-time
// blocks it skews the differences between commands. posix_spawn keeps the
// driver's own share small and equal for all. Prints per CMD, one line:
// "mean_s sd_s median_s min_s".
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmpd(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv) {
	if (argc < 4) {
		fprintf(stderr, "usage: startbench RUNS WARMUP CMD...\n");
		return 2;
	}
	int runs = atoi(argv[1]), warmup = atoi(argv[2]), nc = argc - 3;
	char ***cmds = calloc(nc, sizeof *cmds);
	for (int c = 0; c < nc; c++) {
		char *s = strdup(argv[3 + c]);
		cmds[c] = calloc(strlen(s) / 2 + 2, sizeof(char *));
		int k = 0;
		for (char *tok = strtok(s, " "); tok; tok = strtok(NULL, " "))
			cmds[c][k++] = tok;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	for (int fd = 0; fd < 3; fd++)
		posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
	double *t = calloc((size_t)nc * runs, sizeof *t);
	for (int r = -warmup; r < runs; r++) {
		for (int j = 0; j < nc; j++) {
			int c = (j + (r < 0 ? 0 : r)) % nc;
			pid_t pid;
			int st;
			double t0 = now_s();
			if (posix_spawn(&pid, cmds[c][0], &fa, NULL, cmds[c], environ) != 0) {
				perror(cmds[c][0]);
				return 1;
			}
			if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				fprintf(stderr, "startbench: '%s' failed\n", argv[3 + c]);
				return 1;
			}
			if (r >= 0)
				t[(size_t)c * runs + r] = now_s() - t0;
		}
	}
	for (int c = 0; c < nc; c++) {
		double *v = t + (size_t)c * runs, sum = 0, sq = 0;
		for (int r = 0; r < runs; r++)
			sum += v[r];
		double mean = sum / runs;
		for (int r = 0; r < runs; r++)
			sq += (v[r] - mean) * (v[r] - mean);
		qsort(v, runs, sizeof *v, cmpd);
		double med = runs % 2 ? v[runs / 2] : (v[runs / 2 - 1] + v[runs / 2]) / 2;
		printf("%.9f %.9f %.9f %.9f\n", mean, runs > 1 ? sqrt(sq / (runs - 1)) : 0, med, v[0]);
	}
	return 0;
}

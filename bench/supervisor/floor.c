/*
 * The restart floor of the machine: no supervisor, just posix_spawn of
 * `svc exit FILE` and waitpid, N times in a row. The gaps in FILE then show
 * what a restart costs with no supervisor logic in it at all. On small VMs
 * process creation alone can take milliseconds. posix_spawn is glibc's
 * clone(CLONE_VM|CLONE_VFORK), as Go's (and so tend's) fork/exec is: a plain
 * fork() would add page-table copying that neither supervisor pays.
 *
 *   floor N SVC FILE [FDS]
 *
 * With FDS, it first opens FDS/2 pipes (close-on-exec, as Go opens every
 * fd): the kernel copies the whole fd table into each child and the exec then
 * closes those fds again, so a process holding many fds pays for each of them
 * at every fork. A supervisor that is one process holding two pipe ends per
 * service pays this; one process per service (s6, runit) does not.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	int n, st, p[2];
	pid_t pid;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: floor N SVC FILE [FDS]\n");
		return 2;
	}
	n = atoi(argv[1]);
	for (int i = 0; argc == 5 && i < atoi(argv[4]) / 2; i++)
		if (pipe2(p, O_CLOEXEC) != 0) {
			perror("floor: pipe2");
			return 1;
		}
	char *args[] = {argv[2], "exit", argv[3], NULL};
	for (int i = 0; i < n; i++) {
		if (posix_spawn(&pid, args[0], NULL, NULL, args, environ) != 0)
			return 1;
		if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 1;
	}
	return 0;
}

/*
 * The restart floor of the machine: no supervisor, just posix_spawn of
 * `svc exit FILE` and waitpid, N times in a row. The gaps in FILE then show
 * what a restart costs with no supervisor logic in it at all. On small VMs
 * process creation alone can take milliseconds. posix_spawn is glibc's
 * clone(CLONE_VM|CLONE_VFORK), as Go's (and so tend's) fork/exec is: a plain
 * fork() would add page-table copying that neither supervisor pays.
 *
 *   floor N SVC FILE
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	int n, st;
	pid_t pid;

	if (argc != 4) {
		fprintf(stderr, "usage: floor N SVC FILE\n");
		return 2;
	}
	n = atoi(argv[1]);
	char *args[] = {argv[2], "exit", argv[3], NULL};
	for (int i = 0; i < n; i++) {
		if (posix_spawn(&pid, args[0], NULL, NULL, args, environ) != 0)
			return 1;
		if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 1;
	}
	return 0;
}

// orphans N OUTFILE: the init's child in the orphan-reaping benchmark; run it
// as `INIT -- orphans N OUTFILE` with INIT as PID 1 of a new PID namespace.
//
// An intermediate process creates N children that exit at once, waits (with
// WNOWAIT, i.e. without reaping) until every one of them is a zombie, stamps
// t0 and exits. The children are made with clone(CLONE_VM|CLONE_VFORK): they
// are ordinary processes (own PID, exit signal SIGCHLD) but skip copying and
// tearing down page tables, which on small VMs makes fork()+exit cost ~1 ms
// each and would turn 20,000 of them into a minute of setup. Its exit re-parents all N zombies to PID 1 in one go, and the
// init gets SIGCHLD for them. So the measured interval contains no fork or
// process-exit work: only the kernel's re-parenting (identical for every
// init) and the init reaping N zombies.
//
// We (PID 2) cannot wait for processes that are not our children, so we
// detect reaping with kill(pid, 0): a zombie still owns its PID, a reaped
// process gives ESRCH. We walk the PID list in fork order (the order in which
// wait() finds them on PID 1's child list), sleeping 20 us whenever the next
// one is still there. Only we poll; the init is free to sleep. t1 = the moment
// the last one is gone. Writes "reap_ms fork_ms n" to OUTFILE.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct shared {
	int64_t t_fork0, t0;
	int n;
	pid_t pids[];
};

// Runs on the parent's (suspended, thanks to CLONE_VFORK) memory: touch
// nothing, just exit.
static int child_fn(void *arg) {
	(void)arg;
	syscall(SYS_exit, 0);
	return 0;
}

static char child_stack[16384] __attribute__((aligned(16)));

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: orphans N OUTFILE\n");
		return 2;
	}
	int want = atoi(argv[1]);
	// Zombies must stay zombies until PID 1 reaps them: an inherited
	// SIG_IGN for SIGCHLD would make the kernel auto-reap them.
	signal(SIGCHLD, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	struct shared *sh = mmap(NULL, sizeof *sh + want * sizeof(pid_t),
	                         PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	pid_t mid = fork();
	if (mid < 0) {
		perror("fork");
		return 1;
	}
	if (mid == 0) {
		sh->t_fork0 = now_ns();
		int n = 0;
		for (; n < want; n++) {
			pid_t p = clone(child_fn, child_stack + sizeof child_stack,
			                CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
			if (p < 0) {
				perror("clone");
				break;
			}
			sh->pids[n] = p;
		}
		sh->n = n;
		siginfo_t si;
		for (int i = 0; i < n; i++)
			while (waitid(P_PID, sh->pids[i], &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
				;
		sh->t0 = now_ns();
		_exit(0);
	}
	int st;
	while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
		;
	int n = sh->n;
	// Fine-grained polling: default timer slack would stretch each nap to ~70 us.
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	struct timespec nap = {0, 20000};
	int64_t deadline = now_ns() + 60LL * 1000000000;
	int i = 0;
	while (i < n) {
		if (kill(sh->pids[i], 0) < 0 && errno == ESRCH) {
			i++;
			continue;
		}
		if (now_ns() > deadline) {
			fprintf(stderr, "orphans: %d of %d still not reaped after 60 s\n", n - i, n);
			break;
		}
		nanosleep(&nap, NULL);
	}
	int64_t t1 = now_ns();
	FILE *f = fopen(argv[2], "w");
	if (!f) {
		perror("fopen");
		return 1;
	}
	if (i < n)
		fprintf(f, "nan %.1f %d\n", (sh->t0 - sh->t_fork0) / 1e6, n);
	else
		fprintf(f, "%.2f %.1f %d\n", (t1 - sh->t0) / 1e6, (sh->t0 - sh->t_fork0) / 1e6, n);
	fclose(f);
	return i < n;
}

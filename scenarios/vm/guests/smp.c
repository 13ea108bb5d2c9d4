/* A guest on every vCPU it has (`cpus N` on the host): each vCPU runs
 * `run "ROUNDS"` rounds of an integer hash and prints its own virtual time for
 * them; vCPU 0 waits for the others, then prints the total and exits. On a
 * machine with fewer cores than vCPUs the vCPUs take turns: wall time grows,
 * each vCPU's virtual time does not. */
#include "ls.h"

static uint64_t rounds = 50000000ull;
static volatile uint32_t finished;

static void work(void *arg)
{
	uint64_t start = ls_now(), x = 0x9e3779b97f4a7c15ull + (uint64_t)(uintptr_t)arg;

	for (uint64_t i = 0; i < rounds; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	ls_printf("cpu=%u rounds=%lu elapsed_ns=%lu check=%lx\n", ls_cpu_id(), rounds, ls_now() - start, x & 0xff);
	__atomic_add_fetch(&finished, 1, __ATOMIC_RELEASE);
}

int main(void)
{
	char arg[32];
	uint32_t cpus = ls_cpu_count();
	uint64_t start = ls_now();

	ls_arg(arg, sizeof arg);
	if (arg[0] != '\0')
		rounds = (uint64_t)ls_atol(arg);
	for (uint32_t cpu = 1; cpu < cpus; cpu++) {
		int rc = ls_cpu_start(cpu, work, (void *)(uintptr_t)cpu);

		if (rc != 0) {
			ls_printf("starting vCPU %u failed: %d\n", cpu, rc);
			return 1;
		}
	}
	work(0);
	/* the others report on their own clocks; wait for them without burning the CPU */
	while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) < cpus)
		ls_sleep_until(ls_now() + 1000000);
	ls_printf("all %u vCPUs done at %lu ns (started at %lu)\n", cpus, ls_now(), start);
	return 0;
}

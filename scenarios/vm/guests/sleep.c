/* Sleeps until virtual time `run "NS"` (default 5 s) without using the CPU:
 * the simulation jumps over the idle time. */
#include "ls.h"

int main(void)
{
	char arg[32];
	uint64_t until, before, after;

	ls_arg(arg, sizeof arg);
	until = arg[0] != '\0' ? (uint64_t)ls_atol(arg) : 5000000000ull;
	before = ls_now();
	ls_sleep_until(until);
	after = ls_now();
	ls_printf("slept from %lu to %lu ns (asked %lu)\n", before, after, until);
	return 0;
}

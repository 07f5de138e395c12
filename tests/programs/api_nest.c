/* Manual spans among function spans (built with -finstrument-functions):
 * main > outer_work > manual.middle > inner_work. */
#include <otlpauto.h>
#include <stdio.h>
#include <time.h>

void inner_work(void);
void outer_work(void);

/* Not a span of its own: the tree stays four spans deep. */
__attribute__((no_instrument_function)) static void busy_ms(long ms)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	do
		clock_gettime(CLOCK_MONOTONIC, &now);
	while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
}

__attribute__((noinline)) void inner_work(void)
{
	busy_ms(2);
}

__attribute__((noinline)) void outer_work(void)
{
	OTLPAUTO_SPAN("manual.middle")
	{
		inner_work();
	}
}

int main(void)
{
	outer_work();
	printf("nest done\n");
	return 0;
}

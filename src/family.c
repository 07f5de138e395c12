/* The family registry (family.h): the linker gathers every OA_FAMILY into
 * the section oa_families and defines its bounds. */
#include "family.h"

extern const struct oa_family __start_oa_families[] __attribute__((visibility("hidden")));
extern const struct oa_family __stop_oa_families[] __attribute__((visibility("hidden")));

void oa_families_init(void)
{
	for (const struct oa_family *f = __start_oa_families; f < __stop_oa_families; f++)
		if (f->init)
			f->init();
}

void oa_families_start(void)
{
	for (const struct oa_family *f = __start_oa_families; f < __stop_oa_families; f++)
		if (f->start)
			f->start();
}

void oa_families_atfork_prepare(void)
{
	for (const struct oa_family *f = __start_oa_families; f < __stop_oa_families; f++)
		if (f->atfork_prepare)
			f->atfork_prepare();
}

void oa_families_atfork_child(void)
{
	for (const struct oa_family *f = __start_oa_families; f < __stop_oa_families; f++)
		if (f->atfork_child)
			f->atfork_child();
}

void oa_families_thread_exit(struct oa_thread *t, enum oa_end_reason why)
{
	for (const struct oa_family *f = __start_oa_families; f < __stop_oa_families; f++)
		if (f->thread_exit)
			f->thread_exit(t, why);
}

void oa_families_process_exit(bool async)
{
	for (const struct oa_family *f = __start_oa_families; f < __stop_oa_families; f++)
		if (f->process_exit)
			f->process_exit(async);
}

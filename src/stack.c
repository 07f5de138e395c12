#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <link.h>

#include "dynlib.h"
#include "stack.h"

/* libunwind is opened at start-up, and only when stack traces are on: the
 * capture runs in hooks, which must not load anything. */
#define LIBUNWIND_FUNCTIONS(X) X(unw_backtrace)
static struct {
	LIBUNWIND_FUNCTIONS(OA_DYNLIB_POINTER)
} libunwind;
#define LIBUNWIND_SYMBOL(name) OA_DYNLIB_SYMBOL(libunwind, name)
static const struct oa_dynlib_symbol libunwind_symbols[] = {LIBUNWIND_FUNCTIONS(LIBUNWIND_SYMBOL)};
static struct oa_dynlib libunwind_lib =
    OA_DYNLIB("libunwind.so.8", libunwind_symbols, "spans have no stack traces");

static uintptr_t own_start, own_end;

static int find_own_object(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	uintptr_t self = (uintptr_t)data;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uintptr_t start = info->dlpi_addr + ph->p_vaddr;
		if (self >= start && self < start + ph->p_memsz) {
			own_start = start;
			own_end = start + ph->p_memsz;
			return 1;
		}
	}
	return 0;
}

bool oa_stack_init(void)
{
	if (!oa_dynlib_load(&libunwind_lib))
		return false;
	dl_iterate_phdr(find_own_object, (void *)(uintptr_t)oa_stack_init);
	return true;
}

void oa_payload_stack(struct oa_payload *w)
{
	void *frames[OA_STACK_MAX_FRAMES + 8];
	int n = libunwind.unw_backtrace(frames, (int)(sizeof frames / sizeof frames[0]));
	int first = 0;
	while (first < n && (uintptr_t)frames[first] >= own_start &&
	       (uintptr_t)frames[first] < own_end)
		first++;
	int count = n - first;
	if (count > OA_STACK_MAX_FRAMES)
		count = OA_STACK_MAX_FRAMES;
	if (count <= 0 || !oa_payload_room(w, 2 + 8 * (size_t)count))
		return;
	oa_payload_u8(w, OA_ITEM_STACK);
	oa_payload_u8(w, (uint8_t)count);
	oa_payload_put(w, frames + first, 8 * (size_t)count);
}

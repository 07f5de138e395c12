/* AddressSanitizer builds only. Preloaded right after the ASan runtime and
 * marked -z initfirst, this initialises the runtime before any other
 * library's constructor. Left to itself, the runtime initialises on the
 * first malloc it intercepts; in a foreign program that is p11-kit's
 * constructor (pulled in by libcurl), inside newlocale with glibc's locale
 * lock held, and the runtime's dlerror() takes that lock again and corrupts
 * it: the program then hangs in freelocale at exit. */
void __asan_init(void);

__attribute__((constructor)) static void init_runtime_first(void)
{
	__asan_init();
}

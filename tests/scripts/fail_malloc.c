/* fail_malloc.c — LD_PRELOAD shim for tests/scripts/test_cli_alloc.sh: makes the N-th
 * malloc/calloc/realloc of a program fail once, so that the test can check the CLI (which calls
 * plain malloc, strdup, cJSON and stdio, not the library's mtgradi_malloc hook) turns every
 * allocation failure into a clean error instead of a crash or silently wrong output.
 *
 *   MTGRAD_FAIL_MALLOC_AT=N       the N-th counted allocation (1-based) returns NULL, once
 *   MTGRAD_FAIL_MALLOC_REPORT=F   at exit, write "COUNT FIRED" to file F (allocations counted,
 *                                 1 if the injected failure happened)
 *
 * Only allocations made on the main thread from the start of main() on are counted: library
 * constructors (OpenBLAS's, libgomp's) run before main and OpenMP workers run in an order that is
 * not fixed, and counting them would make N point at a different allocation from run to run.
 * main() is reached by interposing __libc_start_main (glibc). The real functions come from
 * dlsym(RTLD_NEXT, ...) so that under AddressSanitizer the shim wraps ASan's allocator (run it
 * with ASAN_OPTIONS=verify_asan_link_order=0). Built by the test script: cc -shared -fPIC. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void (*free_fn)(void *);
typedef int (*main_fn)(int, char **, char **);
typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void),
                        void *);

static malloc_fn real_malloc;
static calloc_fn real_calloc;
static realloc_fn real_realloc;
static free_fn real_free;
static main_fn real_main;

static long fail_at = -1; /* from MTGRAD_FAIL_MALLOC_AT; -1: only count */
static long counted;      /* allocations counted so far */
static int fired;
/* initial-exec: reading a TLS variable must not itself allocate inside malloc */
static __thread int on_main __attribute__((tls_model("initial-exec")));

/* dlsym may call calloc before the real one is known: serve those from a small static arena that
 * free() recognises and ignores. */
static _Alignas(16) unsigned char arena[4096];
static size_t arena_used;
static int resolving;

static void *arena_alloc(size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size > sizeof arena - arena_used) return NULL;
    void *p = arena + arena_used;
    arena_used += size;
    return p;
}

static int in_arena(const void *p)
{
    return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + sizeof arena;
}

/* ISO C has no object-to-function pointer cast; POSIX guarantees the representations agree. */
#define NEXT(fn, name)                                                                             \
    do {                                                                                           \
        void *sym_ = dlsym(RTLD_NEXT, name);                                                       \
        memcpy(&(fn), &sym_, sizeof(fn));                                                          \
    } while (0)

static void resolve(void)
{
    if (real_free || resolving) return;
    resolving = 1;
    NEXT(real_malloc, "malloc");
    NEXT(real_calloc, "calloc");
    NEXT(real_realloc, "realloc");
    NEXT(real_free, "free");
    resolving = 0;
}

/* 1 if this allocation must fail (with errno set as glibc's malloc sets it). */
static int inject(void)
{
    if (!on_main) return 0;
    counted++;
    if (counted != fail_at) return 0;
    fired = 1;
    errno = ENOMEM;
    return 1;
}

void *malloc(size_t size)
{
    resolve();
    if (!real_malloc) return arena_alloc(size);
    return inject() ? NULL : real_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    resolve();
    if (!real_calloc) return n && size > SIZE_MAX / n ? NULL : arena_alloc(n * size); /* zeroed */
    return inject() ? NULL : real_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    resolve();
    if (!real_realloc || in_arena(p)) return NULL; /* never happens in practice */
    return inject() ? NULL : real_realloc(p, size);
}

void free(void *p)
{
    resolve();
    if (!p || in_arena(p) || !real_free) return;
    real_free(p);
}

static void write_report(void)
{
    const char *path = getenv("MTGRAD_FAIL_MALLOC_REPORT");
    if (!path || !*path) return;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%ld %d\n", counted, fired);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || n <= 0) return;
    if (write(fd, buf, (size_t)n) != n) { /* the test sees a missing or short report */
    }
    close(fd);
}

/* The destructor runs at exit() or return from main; _exit and signals skip it (and the test
 * sees those anyway). */
__attribute__((destructor)) static void at_exit_report(void)
{
    on_main = 0; /* what runs after this is not counted: the report would not include it */
    write_report();
}

static int wrapped_main(int argc, char **argv, char **envp)
{
    const char *at = getenv("MTGRAD_FAIL_MALLOC_AT");
    if (at && *at) fail_at = strtol(at, NULL, 10);
    on_main = 1;
    return real_main(argc, argv, envp);
}

int __libc_start_main(main_fn main_, int argc, char **argv, void (*init)(void),
                      void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
    start_fn real_start;
    NEXT(real_start, "__libc_start_main");
    real_main = main_;
    return real_start(wrapped_main, argc, argv, init, fini, rtld_fini, stack_end);
}

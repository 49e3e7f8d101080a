/*
 * Atomic loads and stores, fences and futex waits on shared-memory words.
 *
 * Every function takes raw addresses as Python ints (uintptr_t). The Python side takes
 * them once from a NumPy view of a segment mapping and keeps that view referenced
 * during each call, so the mapping outlives the call. An address must be non-zero and
 * 8-byte aligned; anything else raises ValueError.
 *
 * Memory ordering between the writer and its readers:
 *
 * - The writer stores `claimed` (relaxed) and then issues a seq_cst fence before it
 *   copies records into the slots (claim()). It stores `published` with release
 *   semantics after the copy (publish()).
 * - A reader loads `published` with acquire semantics before it reads any record. The
 *   release store and the acquire load pair up, so every record below the published
 *   cursor the reader saw is complete in its view. That holds on weakly ordered CPUs
 *   (aarch64) as well as on x86-64, because C11 atomics emit the barriers each needs.
 * - Records are copied with plain stores, so a slow reader can race with the writer
 *   overwriting the same slots. The reader detects that like a seqlock: after it has
 *   used the records, it issues an acquire fence and loads `claimed` again
 *   (fenced_load_u64). The fence keeps the record loads before that load. If the
 *   writer's claim of a slot happened before the reader's record loads could have seen
 *   the new data, the reader loads the new `claimed` and so detects that the records may be torn.
 *
 * Waking sleeping readers uses a wait area of three words:
 *
 *   offset 0   uint32 futex word, bumped by every wake-up
 *   offset 8   uint64 number of readers registered as sleepers
 *   offset 16  uint64 number of FUTEX_WAKE calls issued
 *
 * A reader loads the futex word, registers as a sleeper, and checks the cursor again
 * before FUTEX_WAIT on the value it loaded. The writer stores the cursor, issues a
 * seq_cst fence, and reads the sleeper count. Both sides have a seq_cst fence between
 * their store and their load, so at least one of them sees the other's store: either
 * the reader sees the new cursor and does not sleep, or the writer sees the sleeper
 * and bumps the futex word, which makes a FUTEX_WAIT on the old value return at once.
 * The futex is shared (no FUTEX_PRIVATE_FLAG) because readers in other processes map
 * the same page.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Longest single sleep when the caller gave no timeout, so Python regains control
   often enough to notice signals, close() and a dead owner. */
#define SLICE_NS 100000000LL

/* Spin iterations between two reads of the clock while busy-polling. */
#define CLOCK_EVERY 32

typedef struct {
    _Atomic uint32_t futex;
    uint32_t padding;
    _Atomic uint64_t sleepers;
    _Atomic uint64_t wakes;
} wait_area;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline int64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static int to_address(PyObject *value, void **address)
{
    unsigned long long number = PyLong_AsUnsignedLongLong(value);
    if (number == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    if (number == 0 || (number & 7) != 0) {
        PyErr_Format(PyExc_ValueError, "invalid address %#llx: expected a non-zero, 8-byte aligned address", number);
        return -1;
    }
    *address = (void *)(uintptr_t)number;
    return 0;
}

static int to_u64(PyObject *value, uint64_t *result)
{
    unsigned long long number = PyLong_AsUnsignedLongLong(value);
    if (number == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    *result = number;
    return 0;
}

static int to_i64(PyObject *value, int64_t *result)
{
    long long number = PyLong_AsLongLong(value);
    if (number == -1 && PyErr_Occurred()) {
        return -1;
    }
    *result = number;
    return 0;
}

static int check_count(const char *name, Py_ssize_t given, Py_ssize_t expected)
{
    if (given != expected) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments, found %zd", name, expected, given);
        return -1;
    }
    return 0;
}

static long futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
    struct timespec timeout = {
        .tv_sec = (time_t)(timeout_ns / 1000000000LL),
        .tv_nsec = (long)(timeout_ns % 1000000000LL),
    };
    return syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, &timeout, NULL, 0);
}

static void wake_all(wait_area *area)
{
    atomic_fetch_add_explicit(&area->futex, 1, memory_order_release);
    atomic_fetch_add_explicit(&area->wakes, 1, memory_order_relaxed);
    syscall(SYS_futex, (uint32_t *)&area->futex, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ------------------------------------------------------------------ loads, stores, fences */

static PyObject *load_acquire_u64(PyObject *module, PyObject *const *args, Py_ssize_t count)
{
    void *address;
    if (check_count("load_acquire_u64", count, 1) || to_address(args[0], &address)) {
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(atomic_load_explicit((_Atomic uint64_t *)address, memory_order_acquire));
}

static PyObject *fenced_load_u64(PyObject *module, PyObject *const *args, Py_ssize_t count)
{
    void *address;
    if (check_count("fenced_load_u64", count, 1) || to_address(args[0], &address)) {
        return NULL;
    }
    atomic_thread_fence(memory_order_acquire);
    return PyLong_FromUnsignedLongLong(atomic_load_explicit((_Atomic uint64_t *)address, memory_order_relaxed));
}

static PyObject *store_release_u64(PyObject *module, PyObject *const *args, Py_ssize_t count)
{
    void *address;
    uint64_t value;
    if (check_count("store_release_u64", count, 2) || to_address(args[0], &address) || to_u64(args[1], &value)) {
        return NULL;
    }
    atomic_store_explicit((_Atomic uint64_t *)address, value, memory_order_release);
    Py_RETURN_NONE;
}

static PyObject *fence_seq_cst(PyObject *module, PyObject *unused)
{
    atomic_thread_fence(memory_order_seq_cst);
    Py_RETURN_NONE;
}

static PyObject *fence_acquire(PyObject *module, PyObject *unused)
{
    atomic_thread_fence(memory_order_acquire);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ writer side */

static PyObject *claim(PyObject *module, PyObject *const *args, Py_ssize_t count)
{
    void *claimed;
    uint64_t value;
    if (check_count("claim", count, 2) || to_address(args[0], &claimed) || to_u64(args[1], &value)) {
        return NULL;
    }
    atomic_store_explicit((_Atomic uint64_t *)claimed, value, memory_order_relaxed);

    /* The full fence orders the claim before every store of the record copy that
       follows, so a reader that loads the new records also loads the new claim. */
    atomic_thread_fence(memory_order_seq_cst);
    Py_RETURN_NONE;
}

static PyObject *copy_in(PyObject *module, PyObject *const *args, Py_ssize_t count)
{
    /* copy_in(data_address, area_bytes, offset_bytes, records): copy the bytes of a
       C-contiguous buffer into the record area at offset, continuing at its start when
       the end is reached. One memcpy, or two at the wrap-around; numpy would copy a
       structured dtype field by field instead. */
    void *data;
    uint64_t area_bytes, offset;
    Py_buffer view;
    if (check_count("copy_in", count, 4) || to_address(args[0], &data) || to_u64(args[1], &area_bytes)
        || to_u64(args[2], &offset)) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[3], &view, PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    if ((uint64_t)view.len > area_bytes || offset >= area_bytes) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "invalid copy of %zd bytes at offset %llu into an area of %llu bytes",
                     view.len, (unsigned long long)offset, (unsigned long long)area_bytes);
        return NULL;
    }

    uint64_t length = (uint64_t)view.len;
    uint64_t first = area_bytes - offset < length ? area_bytes - offset : length;
    char *target = data;
    const char *source = view.buf;
    if (length > 65536) {
        Py_BEGIN_ALLOW_THREADS
        memcpy(target + offset, source, first);
        memcpy(target, source + first, length - first);
        Py_END_ALLOW_THREADS
    } else {
        memcpy(target + offset, source, first);
        memcpy(target, source + first, length - first);
    }
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *publish(PyObject *module, PyObject *const *args, Py_ssize_t count)
{
    void *published, *liveness, *area_address;
    uint64_t value;
    if (check_count("publish", count, 4) || to_address(args[0], &published) || to_u64(args[1], &value)
        || to_address(args[2], &liveness) || to_address(args[3], &area_address)) {
        return NULL;
    }
    wait_area *area = area_address;

    atomic_store_explicit((_Atomic uint64_t *)liveness, (uint64_t)monotonic_ns(), memory_order_relaxed);
    atomic_store_explicit((_Atomic uint64_t *)published, value, memory_order_release);

    /* Pairs with the fence a reader issues after registering as a sleeper. No system
       call happens unless a reader is registered. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&area->sleepers, memory_order_relaxed) == 0) {
        Py_RETURN_FALSE;
    }
    wake_all(area);
    Py_RETURN_TRUE;
}

static PyObject *notify(PyObject *module, PyObject *const *args, Py_ssize_t count)
{
    void *area_address;
    if (check_count("notify", count, 1) || to_address(args[0], &area_address)) {
        return NULL;
    }
    wait_area *area = area_address;

    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&area->sleepers, memory_order_relaxed) == 0) {
        Py_RETURN_FALSE;
    }
    wake_all(area);
    Py_RETURN_TRUE;
}

/* ------------------------------------------------------------------ reader side */

static inline int has_news(_Atomic uint64_t *published, _Atomic uint64_t *closed, uint64_t position,
                           uint64_t *seen)
{
    *seen = atomic_load_explicit(published, memory_order_acquire);
    return *seen > position || atomic_load_explicit(closed, memory_order_acquire) != 0;
}

static PyObject *wait_for_cursor(PyObject *module, PyObject *const *args, Py_ssize_t count)
{
    void *published_address, *closed_address, *area_address;
    uint64_t position;
    int64_t spin_ns, timeout_ns;
    if (check_count("wait", count, 6) || to_address(args[0], &published_address)
        || to_address(args[1], &closed_address) || to_u64(args[2], &position)
        || to_address(args[3], &area_address) || to_i64(args[4], &spin_ns) || to_i64(args[5], &timeout_ns)) {
        return NULL;
    }
    _Atomic uint64_t *published = published_address;
    _Atomic uint64_t *closed = closed_address;
    wait_area *area = area_address;
    uint64_t seen;
    int interrupted = 0;

    if (has_news(published, closed, position, &seen) || timeout_ns == 0) {
        return PyLong_FromUnsignedLongLong(seen);
    }

    Py_BEGIN_ALLOW_THREADS
    int64_t start = monotonic_ns();
    int64_t deadline = start + (timeout_ns < 0 ? SLICE_NS : timeout_ns);
    int64_t spin_end = start + (spin_ns > 0 ? spin_ns : 0);
    unsigned spins = 0;
    for (;;) {
        if (has_news(published, closed, position, &seen)) {
            break;
        }
        if (++spins % CLOCK_EVERY != 0 && spin_ns > 0) {
            cpu_relax();
            continue;
        }
        int64_t now = monotonic_ns();
        if (now >= deadline) {
            break;
        }
        if (now < spin_end) {
            cpu_relax();
            continue;
        }

        /* Load the futex word before registering, so that a wake-up issued between
           the check below and the FUTEX_WAIT makes the wait return at once. */
        uint32_t expected = atomic_load_explicit(&area->futex, memory_order_acquire);
        atomic_fetch_add_explicit(&area->sleepers, 1, memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst);
        if (has_news(published, closed, position, &seen)) {
            atomic_fetch_sub_explicit(&area->sleepers, 1, memory_order_relaxed);
            break;
        }
        long result = futex_wait(&area->futex, expected, deadline - now);
        int error = errno;
        atomic_fetch_sub_explicit(&area->sleepers, 1, memory_order_relaxed);

        /* EAGAIN (the word changed) and ETIMEDOUT just loop to check again. */
        if (result == -1 && error == EINTR) {
            interrupted = 1;
            has_news(published, closed, position, &seen);
            break;
        }
    }
    Py_END_ALLOW_THREADS

    if (interrupted && PyErr_CheckSignals() < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(seen);
}

static PyObject *busy_poll(PyObject *module, PyObject *const *args, Py_ssize_t count)
{
    void *published_address, *closed_address;
    uint64_t position;
    int64_t timeout_ns;
    if (check_count("busy_poll", count, 4) || to_address(args[0], &published_address)
        || to_address(args[1], &closed_address) || to_u64(args[2], &position) || to_i64(args[3], &timeout_ns)) {
        return NULL;
    }
    _Atomic uint64_t *published = published_address;
    _Atomic uint64_t *closed = closed_address;
    uint64_t seen;

    if (has_news(published, closed, position, &seen) || timeout_ns == 0) {
        return PyLong_FromUnsignedLongLong(seen);
    }

    Py_BEGIN_ALLOW_THREADS
    int64_t deadline = monotonic_ns() + (timeout_ns < 0 ? SLICE_NS : timeout_ns);
    unsigned spins = 0;
    while (!has_news(published, closed, position, &seen)) {
        if (++spins % CLOCK_EVERY == 0 && monotonic_ns() >= deadline) {
            break;
        }
        cpu_relax();
    }
    Py_END_ALLOW_THREADS

    return PyLong_FromUnsignedLongLong(seen);
}

static PyObject *prepare_sleep(PyObject *module, PyObject *const *args, Py_ssize_t count)
{
    void *area_address;
    if (check_count("prepare_sleep", count, 1) || to_address(args[0], &area_address)) {
        return NULL;
    }
    wait_area *area = area_address;

    uint32_t expected = atomic_load_explicit(&area->futex, memory_order_acquire);
    atomic_fetch_add_explicit(&area->sleepers, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    return PyLong_FromUnsignedLong(expected);
}

static PyObject *sleep_on_futex(PyObject *module, PyObject *const *args, Py_ssize_t count)
{
    void *area_address;
    uint64_t expected;
    int64_t timeout_ns;
    if (check_count("sleep", count, 3) || to_address(args[0], &area_address) || to_u64(args[1], &expected)
        || to_i64(args[2], &timeout_ns)) {
        return NULL;
    }
    wait_area *area = area_address;
    if (timeout_ns < 0 || timeout_ns > SLICE_NS) {
        timeout_ns = SLICE_NS;
    }

    long result;
    int error;
    Py_BEGIN_ALLOW_THREADS
    result = futex_wait(&area->futex, (uint32_t)expected, timeout_ns);
    error = errno;
    Py_END_ALLOW_THREADS

    if (result == -1 && error == EINTR && PyErr_CheckSignals() < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *leave(PyObject *module, PyObject *const *args, Py_ssize_t count)
{
    void *area_address;
    if (check_count("leave", count, 1) || to_address(args[0], &area_address)) {
        return NULL;
    }
    wait_area *area = area_address;
    atomic_fetch_sub_explicit(&area->sleepers, 1, memory_order_relaxed);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"load_acquire_u64", (PyCFunction)(void (*)(void))load_acquire_u64, METH_FASTCALL,
     "load_acquire_u64(address) -> int\n\nLoad the uint64 at address with acquire ordering."},
    {"fenced_load_u64", (PyCFunction)(void (*)(void))fenced_load_u64, METH_FASTCALL,
     "fenced_load_u64(address) -> int\n\nIssue an acquire fence, then load the uint64 at address.\n"
     "Every load before the call is ordered before this one (seqlock re-check)."},
    {"store_release_u64", (PyCFunction)(void (*)(void))store_release_u64, METH_FASTCALL,
     "store_release_u64(address, value) -> None\n\nStore the uint64 at address with release ordering."},
    {"fence_seq_cst", fence_seq_cst, METH_NOARGS, "fence_seq_cst() -> None\n\nIssue a sequentially consistent fence."},
    {"fence_acquire", fence_acquire, METH_NOARGS, "fence_acquire() -> None\n\nIssue an acquire fence."},
    {"claim", (PyCFunction)(void (*)(void))claim, METH_FASTCALL,
     "claim(claimed_address, value) -> None\n\nStore the claimed cursor, then issue a full fence."},
    {"copy_in", (PyCFunction)(void (*)(void))copy_in, METH_FASTCALL,
     "copy_in(data_address, area_bytes, offset_bytes, records) -> None\n\n"
     "Copy a C-contiguous buffer into a circular area, wrapping at its end."},
    {"publish", (PyCFunction)(void (*)(void))publish, METH_FASTCALL,
     "publish(published_address, value, liveness_address, wait_area_address) -> bool\n\n"
     "Stamp the liveness time, store-release the published cursor, and wake every\n"
     "sleeper of the wait area if there is one. Return whether a FUTEX_WAKE was issued."},
    {"notify", (PyCFunction)(void (*)(void))notify, METH_FASTCALL,
     "notify(wait_area_address) -> bool\n\nWake every sleeper of the wait area if there is one."},
    {"wait", (PyCFunction)(void (*)(void))wait_for_cursor, METH_FASTCALL,
     "wait(published_address, closed_address, position, wait_area_address, spin_ns, timeout_ns) -> int\n\n"
     "Wait until the published cursor exceeds position or the closed flag is set: spin for\n"
     "spin_ns, then sleep on the wait area's futex. Return the published cursor last seen.\n"
     "A negative timeout_ns returns after at most 100 ms so that the caller can check its state."},
    {"busy_poll", (PyCFunction)(void (*)(void))busy_poll, METH_FASTCALL,
     "busy_poll(published_address, closed_address, position, timeout_ns) -> int\n\n"
     "Like wait() but spin without system calls until the deadline."},
    {"prepare_sleep", (PyCFunction)(void (*)(void))prepare_sleep, METH_FASTCALL,
     "prepare_sleep(wait_area_address) -> int\n\nLoad the futex word, then register as a sleeper and\n"
     "issue a full fence. Check the condition next, then call sleep() and always leave()."},
    {"sleep", (PyCFunction)(void (*)(void))sleep_on_futex, METH_FASTCALL,
     "sleep(wait_area_address, expected, timeout_ns) -> None\n\nFUTEX_WAIT while the futex word equals\n"
     "expected, for at most timeout_ns (100 ms when negative or larger)."},
    {"leave", (PyCFunction)(void (*)(void))leave, METH_FASTCALL,
     "leave(wait_area_address) -> None\n\nUnregister a sleeper registered by prepare_sleep()."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    .m_name = "kitefeed.ringbuf._atomics",
    .m_doc = "C11 atomics and Linux futex waits on shared-memory words of kitefeed rings.",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__atomics(void)
{
    PyObject *module = PyModule_Create(&module_definition);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "SLICE_NS", SLICE_NS) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

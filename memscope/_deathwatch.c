/* memscope._deathwatch: is the object at this address still the one a binding saw?
 *
 * Lists, dicts, sets, tuples, bytes and bytearrays refuse weak references, and CPython
 * reuses their addresses at once (free lists), so an id found alive at the end of a run
 * says nothing by itself. Here the deallocator of those seven exact built-in types is
 * wrapped: an address handed to watch(obj, stamp) is forgotten the moment its object is
 * deallocated, and the address is queued for deaths(). So while since(address) answers,
 * the object at that address is the one watched at ``stamp``, never a successor. No
 * reference is held, nothing is added to the objects, no Python code runs in the
 * wrapper.
 *
 * Why only these types: int, float and str are also freed by the interpreter's own
 * specialised paths (not through tp_dealloc), so a death could be missed; heap types
 * share subtype_dealloc, which finds its base's deallocator by comparing slots and would
 * loop through a wrapper. Those are weak-referenced (memscope._hooks) or left out, but
 * for a large str, whose death is seen where its block is freed (watch_large, below).
 *
 * The trashcan: list, tuple, dict and set deallocators defer deep nesting only when
 * Py_TYPE(op)->tp_dealloc is themselves; with the slot wrapped that test fails in
 * them, so the wrapper does the deferring in their place (after untracking the object
 * from the collector, as they do first).
 *
 * The GIL is held wherever this runs (a free-threaded build refuses start()).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "_clock.h"
#include <stdint.h>
#include <structmember.h>

static PyObject *
_PyLong_GetOne_compat(void)
{
    static PyObject *one = NULL;
    if (one == NULL)
        one = PyLong_FromLong(1);
    return one;
}

typedef struct {
    uintptr_t addr; /* 0: empty, 1: deleted (an object is never at address 1) */
    long long stamp;
} Slot;

#define EMPTY ((uintptr_t)0)
#define DELETED ((uintptr_t)1)

static Slot *table = NULL;
static size_t cap = 0;    /* a power of two, or 0 */
static size_t used = 0;   /* live entries */
static size_t filled = 0; /* live and deleted entries */
static int shift = 64;

static uintptr_t *dead = NULL;
static size_t ndead = 0, dead_cap = 0;
static size_t lost = 0; /* deaths not queued (no memory for the queue) */

static size_t
slot_of(uintptr_t a)
{
    return (size_t)(((uint64_t)(a >> 3) * 11400714819323198485ull) >> shift);
}

static Slot *
find(uintptr_t a)
{
    if (cap == 0)
        return NULL;
    size_t mask = cap - 1, i = slot_of(a);
    for (;;) {
        Slot *s = &table[i];
        if (s->addr == a)
            return s;
        if (s->addr == EMPTY)
            return NULL;
        i = (i + 1) & mask;
    }
}

static void
forget(PyObject *op)
{
    Slot *s = find((uintptr_t)op);
    if (s == NULL)
        return;
    s->addr = DELETED;
    used--;
    if (ndead == dead_cap) {
        size_t n = dead_cap ? dead_cap * 2 : 1024;
        uintptr_t *grown = PyMem_RawRealloc(dead, n * sizeof(uintptr_t));
        if (grown == NULL) {
            lost++;
            return;
        }
        dead = grown;
        dead_cap = n;
    }
    dead[ndead++] = (uintptr_t)op;
}

static int
resize(size_t n)
{
    Slot *old = table;
    size_t old_cap = cap;
    Slot *t = PyMem_RawCalloc(n, sizeof(Slot));
    if (t == NULL)
        return -1;
    table = t;
    cap = n;
    shift = 64;
    for (size_t c = n; c > 1; c >>= 1)
        shift--;
    used = filled = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].addr > DELETED) {
            size_t mask = cap - 1, j = slot_of(old[i].addr);
            while (table[j].addr != EMPTY)
                j = (j + 1) & mask;
            table[j] = old[i];
            used++;
            filled++;
        }
    }
    PyMem_RawFree(old);
    return 0;
}

/* ---- the wrapped deallocators -------------------------------------------------------- */

#define GC_WRAPPER(name)                                                                   \
    static destructor orig_##name;                                                         \
    static void dealloc_##name(PyObject *op)                                               \
    {                                                                                      \
        PyObject_GC_UnTrack(op);                                                           \
        Py_TRASHCAN_BEGIN(op, dealloc_##name)                                              \
        if (used)                                                                          \
            forget(op);                                                                    \
        orig_##name(op);                                                                   \
        Py_TRASHCAN_END                                                                    \
    }

#define PLAIN_WRAPPER(name)                                                                \
    static destructor orig_##name;                                                         \
    static void dealloc_##name(PyObject *op)                                               \
    {                                                                                      \
        if (used)                                                                          \
            forget(op);                                                                    \
        orig_##name(op);                                                                   \
    }

GC_WRAPPER(list)
GC_WRAPPER(tuple)
GC_WRAPPER(dict)
GC_WRAPPER(set)
GC_WRAPPER(frozenset)
PLAIN_WRAPPER(bytes)
PLAIN_WRAPPER(bytearray)

typedef struct {
    PyTypeObject *tp;
    destructor *orig;
    destructor wrapper;
} Patch;

static Patch patches[] = {
    {&PyList_Type, &orig_list, dealloc_list},
    {&PyTuple_Type, &orig_tuple, dealloc_tuple},
    {&PyDict_Type, &orig_dict, dealloc_dict},
    {&PySet_Type, &orig_set, dealloc_set},
    {&PyFrozenSet_Type, &orig_frozenset, dealloc_frozenset},
    {&PyBytes_Type, &orig_bytes, dealloc_bytes},
    {&PyByteArray_Type, &orig_bytearray, dealloc_bytearray},
};
#define NPATCHES (sizeof(patches) / sizeof(patches[0]))

static int started = 0;

static int
watchable(PyTypeObject *tp)
{
    for (size_t i = 0; i < NPATCHES; i++)
        if (patches[i].tp == tp)
            return 1;
    return 0;
}

static int
insert(uintptr_t a, long long stamp)
{
    if (find(a) != NULL)
        return 0; /* the same object, watched since its first stamp */
    if ((filled + 1) * 2 > cap) {
        size_t n = cap ? cap : 1024;
        while ((used + 1) * 4 > n)
            n *= 2;
        if (resize(n) < 0)
            return -1;
    }
    size_t mask = cap - 1, i = slot_of(a);
    while (table[i].addr > DELETED)
        i = (i + 1) & mask;
    if (table[i].addr == EMPTY)
        filled++;
    table[i].addr = a;
    table[i].stamp = stamp;
    used++;
    return 0;
}

/* ---- the module's functions ---------------------------------------------------------- */

static PyObject *
dw_start(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(args))
{
#ifdef Py_GIL_DISABLED
    PyErr_SetString(PyExc_RuntimeError, "not on a free-threaded build");
    return NULL;
#else
    if (!started) {
        for (size_t i = 0; i < NPATCHES; i++) {
            *patches[i].orig = patches[i].tp->tp_dealloc;
            patches[i].tp->tp_dealloc = patches[i].wrapper;
        }
        started = 1;
    }
    Py_RETURN_NONE;
#endif
}

static PyObject *
dw_stop(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(args))
{
    if (started) {
        for (size_t i = 0; i < NPATCHES; i++)
            if (patches[i].tp->tp_dealloc == patches[i].wrapper)
                patches[i].tp->tp_dealloc = *patches[i].orig;
        started = 0;
    }
    PyMem_RawFree(table);
    table = NULL;
    cap = used = filled = 0;
    shift = 64;
    PyMem_RawFree(dead);
    dead = NULL;
    ndead = dead_cap = 0;
    Py_RETURN_NONE;
}

static PyObject *
dw_watch(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "watch(obj, stamp)");
        return NULL;
    }
    if (!started || !watchable(Py_TYPE(args[0])))
        Py_RETURN_FALSE;
    long long stamp = PyLong_AsLongLong(args[1]);
    if (stamp == -1 && PyErr_Occurred())
        return NULL;
    if (insert((uintptr_t)args[0], stamp) < 0)
        return PyErr_NoMemory();
    Py_RETURN_TRUE;
}

/* ---- large str: deaths seen where their blocks are freed ---------------------
 *
 * str objects are also freed by the interpreter's specialised paths
 * (_PyUnicode_ExactDealloc, PyObject_Free), never through tp_dealloc, so a wrapped
 * deallocator would miss deaths. But a block larger than pymalloc's 512 bytes is handed
 * on to the raw allocator, whatever path frees it: here the raw allocator is wrapped
 * (a hook that calls the previous one, as tracemalloc's does) and a freed or moved
 * block's address is forgotten. Only exact, compact str objects whose block is larger
 * than 512 bytes are watched this way (watch_large), and only once a probe string was
 * seen freed through the hook (not so when pymalloc is off: PYTHONMALLOC=malloc). The
 * raw allocator may run without the GIL: only a call holding it looks at the table (a
 * Python object is only ever freed holding it). */

static PyMemAllocatorEx raw_prev;
static int raw_state = 0; /* 0 not tried, 1 hooked and checked, -1 not usable */
static int in_hook = 0;

static void
raw_forget(void *p)
{
    if (used && p != NULL && !in_hook && PyGILState_Check()) {
        in_hook = 1; /* (forget may grow its queue: that realloc comes back here) */
        forget((PyObject *)p);
        in_hook = 0;
    }
}

static void *
raw_malloc(void *Py_UNUSED(ctx), size_t n)
{
    return raw_prev.malloc(raw_prev.ctx, n);
}

static void *
raw_calloc(void *Py_UNUSED(ctx), size_t e, size_t n)
{
    return raw_prev.calloc(raw_prev.ctx, e, n);
}

static void *
raw_realloc(void *Py_UNUSED(ctx), void *p, size_t n)
{
    void *q = raw_prev.realloc(raw_prev.ctx, p, n);
    if (q != NULL && q != p)
        raw_forget(p); /* moved: the block at p is freed */
    return q;
}

static void
raw_free(void *Py_UNUSED(ctx), void *p)
{
    raw_forget(p);
    raw_prev.free(raw_prev.ctx, p);
}

static int
raw_hooked(void)
{
    if (raw_state)
        return raw_state > 0;
    raw_state = -1;
    PyMemAllocatorEx mine = {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free};
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &raw_prev);
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &mine);
    /* the probe: a large str, watched, then freed; its death must come through here */
    PyObject *probe = PyUnicode_New(2000, 127);
    if (probe == NULL) {
        PyErr_Clear();
        return 0;
    }
    uintptr_t a = (uintptr_t)probe;
    size_t before = ndead;
    if (insert(a, 0) < 0) {
        Py_DECREF(probe);
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(probe);
    Slot *s = find(a);
    if (s == NULL) { /* seen: take it off the queue of deaths again */
        if (ndead == before + 1 && dead[before] == a)
            ndead = before;
        raw_state = 1;
    }
    else { /* not seen: this Python's objects do not come here (the hook stays, idle) */
        s->addr = DELETED;
        used--;
    }
    return raw_state > 0;
}

static PyObject *
dw_watch_large(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "watch_large(obj, stamp)");
        return NULL;
    }
    PyObject *op = args[0];
    PyTypeObject *tp = Py_TYPE(op);
    if (!started || tp != &PyUnicode_Type || !PyUnicode_IS_COMPACT(op))
        Py_RETURN_FALSE; /* (a legacy string keeps its characters in a block apart) */
    Py_ssize_t size = PyUnicode_IS_COMPACT_ASCII(op)
                          ? (Py_ssize_t)sizeof(PyASCIIObject) + PyUnicode_GET_LENGTH(op) + 1
                          : (Py_ssize_t)sizeof(PyCompactUnicodeObject) +
                                (PyUnicode_GET_LENGTH(op) + 1) * PyUnicode_KIND(op);
    if (size <= 512 + 64 || !raw_hooked()) /* (a margin over pymalloc's 512 bytes) */
        Py_RETURN_FALSE;
    long long stamp = PyLong_AsLongLong(args[1]);
    if (stamp == -1 && PyErr_Occurred())
        return NULL;
    if (insert((uintptr_t)op, stamp) < 0)
        return PyErr_NoMemory();
    Py_RETURN_TRUE;
}

static PyObject *
dw_since(PyObject *Py_UNUSED(m), PyObject *arg)
{
    uintptr_t a = (uintptr_t)PyLong_AsVoidPtr(arg);
    if (a == 0 && PyErr_Occurred())
        return NULL;
    Slot *s = a > DELETED ? find(a) : NULL;
    if (s == NULL)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(s->stamp);
}

/* watched(): the addresses watched now (their objects alive) */
static PyObject *
dw_watched(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(args))
{
    PyObject *out = PyList_New((Py_ssize_t)used);
    if (out == NULL)
        return NULL;
    /* (making the list can collect: watched objects freed then leave fewer addresses
     * than its length, and the slots past the last one filled are cut) */
    Py_ssize_t n = 0, len = PyList_GET_SIZE(out);
    for (size_t i = 0; i < cap && n < len; i++) {
        if (table[i].addr > DELETED) {
            PyObject *v = PyLong_FromVoidPtr((void *)table[i].addr);
            if (v == NULL) {
                Py_DECREF(out);
                return NULL;
            }
            PyList_SET_ITEM(out, n++, v);
        }
    }
    if (n < len && PyList_SetSlice(out, n, len, NULL) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *
dw_deaths(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(args))
{
    /* Making the list can start a garbage collection, whose frees of watched objects
     * add deaths: the list holds the ones counted before it was made, and those added
     * meanwhile stay for the next call (never written past the list's end). */
    PyObject *out = PyList_New((Py_ssize_t)ndead);
    if (out == NULL)
        return NULL;
    size_t n = (size_t)PyList_GET_SIZE(out);
    for (size_t i = 0; i < n; i++) {
        PyObject *v = PyLong_FromVoidPtr((void *)dead[i]);
        if (v == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)i, v);
    }
    if (ndead > n)
        memmove(dead, dead + n, (ndead - n) * sizeof(uintptr_t));
    ndead -= n;
    return out;
}

static PyObject *
dw_pending(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(args))
{
    return PyLong_FromSize_t(ndead);
}

static PyObject *
dw_stats(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(args))
{
    return Py_BuildValue("{s:n,s:n,s:n,s:O}", "watched", (Py_ssize_t)used, "capacity",
                         (Py_ssize_t)cap, "lost", (Py_ssize_t)lost, "started",
                         started ? Py_True : Py_False);
}


/* ---- age: did an object exist before a given moment? (leaks: set-up, not made) -----
 *
 * An object first named by a scope is "made" by it only if it did not exist before the
 * scope began. Two facts prove that it did, read without running code or holding it:
 *
 * - the collector's lists: CPython appends every object it starts tracking at the tail
 *   of generation 0's list; a collection of generation 0 appends what survives, in
 *   order, at the tail of generation 1's (an object it first thought unreachable and
 *   then found reachable goes last: it can only look younger), and only a collection
 *   of generation 1 or 2 (or gc.freeze) takes objects out of generation 1. memscope
 *   makes a marker (a small list of its own) at each poll and pins it (``pin``: a
 *   reference the collector does not see, so it is never thought unreachable and
 *   never moved). A collection appends the survivors of the generations it collects
 *   to the next one's tail, in order. Walking generation 0 back from its tail, then
 *   generations 1 and 2: meeting the marker before the object proves the object was
 *   tracked before it. A non-empty tuple the collector untracked was untracked by a
 *   collection: before the marker if the marker is still in generation 0;
 * - a dict's version tag: every dict creation and change takes the next value of one
 *   interpreter-wide counter (ma_version_tag, 3.10 to 3.13), so a dict whose tag is
 *   below the tag of a dict made at the poll was last changed before the poll.
 *
 * Generation 0's list head lives in the interpreter's state: it is found as the next
 * node of a list made here (the young list's tail), and checked.
 */

typedef struct {
    uintptr_t next;
    uintptr_t prev; /* the low two bits are the collector's flags */
} GCLink;

#define LINK_OF(op) (((GCLink *)(op)) - 1)
#define PTR_MASK (~(uintptr_t)3)

static GCLink *young_head = NULL;
static GCLink *gen1_head = NULL; /* the next generation's head, if found and checked */
static GCLink *gen2_head = NULL; /* and the oldest's */
static int young_checked = 0;

/* the next generation's head after ``h`` (struct gc_generation {PyGC_Head head; int
 * threshold; int count;}, in an array, 3.10 to 3.13), if its neighbours point back */
static GCLink *
next_head(GCLink *h)
{
    GCLink *h1 = (GCLink *)((char *)h + sizeof(GCLink) + 2 * sizeof(int));
    GCLink *n = (GCLink *)(h1->next & PTR_MASK), *pv = (GCLink *)(h1->prev & PTR_MASK);
    if (n != NULL && pv != NULL && (GCLink *)(n->prev & PTR_MASK) == h1 &&
        (GCLink *)(pv->next & PTR_MASK) == h1)
        return h1;
    return NULL;
}

static int
find_young_head(void)
{
    if (young_checked)
        return young_head != NULL;
    young_checked = 1;
    PyObject *probe = PyList_New(0); /* tracked at once: the young list's tail */
    if (probe == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (PyObject_GC_IsTracked(probe)) {
        GCLink *me = LINK_OF(probe);
        GCLink *head = (GCLink *)(me->next & PTR_MASK);
        if (head != NULL && (GCLink *)(head->prev & PTR_MASK) == me)
            young_head = head;
    }
    Py_DECREF(probe);
    if (young_head != NULL)
        gen1_head = next_head(young_head);
    if (gen1_head != NULL)
        gen2_head = next_head(gen1_head);
    return young_head != NULL;
}

/* Markers pinned by a reference the collector cannot see: one never looks unreachable
 * from inside a collection, so no collection moves it to its list's tail (only
 * objects found reachable late are moved there), and the lists, walked from generation
 * 0's tail to generation 2's head, keep every object tracked after it on its younger
 * side. An older object may be moved after it: it then reads as not older (never the
 * other way). memscope pins each poll's marker while it keeps the poll. */
static PyObject **pinned = NULL;
static Py_ssize_t npinned = 0, pin_cap = 0;

static PyObject *
dw_pin(PyObject *Py_UNUSED(m), PyObject *op)
{
    if (npinned == pin_cap) {
        Py_ssize_t cap = pin_cap ? 2 * pin_cap : 1024;
        PyObject **p = (PyObject **)realloc(pinned, (size_t)cap * sizeof(PyObject *));
        if (p == NULL)
            return PyErr_NoMemory();
        pinned = p;
        pin_cap = cap;
    }
    pinned[npinned++] = Py_NewRef(op);
    Py_RETURN_NONE;
}

/* unpin(marker): True if it was pinned (its hidden reference dropped) */
static PyObject *
dw_unpin(PyObject *Py_UNUSED(m), PyObject *op)
{
    for (Py_ssize_t i = npinned - 1; i >= 0; i--) {
        if (pinned[i] == op) {
            pinned[i] = pinned[--npinned];
            Py_DECREF(op);
            Py_RETURN_TRUE;
        }
    }
    Py_RETURN_FALSE;
}

static unsigned long long walked = 0; /* nodes older() has stepped over, in all */

static PyObject *
dw_walked(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(args))
{
    return PyLong_FromUnsignedLongLong(walked);
}

/* older(obj, marker, cap): True if obj was tracked by the collector before the marker
 * (a tracked object of memscope's, kept alive and pinned) was made, as read from the
 * generations walked back from generation 0's tail, cap nodes at most; False if not
 * (or its age is not known); None if the marker was not met within cap nodes. */
static PyObject *
dw_older(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "older(obj, marker, cap)");
        return NULL;
    }
    PyObject *op = args[0], *marker = args[1];
    Py_ssize_t cap_steps = PyLong_AsSsize_t(args[2]);
    if (cap_steps == -1 && PyErr_Occurred())
        return NULL;
    if (!PyObject_IS_GC(op) || !PyObject_IS_GC(marker) || !PyObject_GC_IsTracked(marker) ||
        !find_young_head())
        Py_RETURN_FALSE;
    int tracked = PyObject_GC_IsTracked(op);
    if (!tracked && !(PyTuple_CheckExact(op) && PyTuple_GET_SIZE(op) > 0))
        Py_RETURN_FALSE; /* untracked, and not by a collection: no age known */
    GCLink *me = LINK_OF(op), *mark = LINK_OF(marker);
    GCLink *heads[3] = {young_head, gen1_head, gen2_head};
    Py_ssize_t i = 0;
    for (int g = 0; g < 3 && heads[g] != NULL; g++) {
        GCLink *h = heads[g];
        GCLink *p = (GCLink *)(h->prev & PTR_MASK);
        for (; i < cap_steps && p != NULL && p != h; i++) {
            if (p == me) {
                walked += (unsigned long long)i;
                Py_RETURN_FALSE; /* tracked after the marker (or it is the marker) */
            }
            if (p == mark) {
                walked += (unsigned long long)i;
                if (!tracked && g > 0) /* a collection since may have untracked it */
                    Py_RETURN_FALSE;
                Py_RETURN_TRUE;
            }
            p = (GCLink *)(p->prev & PTR_MASK);
        }
        if (i >= cap_steps)
            break;
    }
    walked += (unsigned long long)i;
    Py_RETURN_NONE; /* not known: cap reached, or the marker not met (frozen, or not
                     * pinned): as far for any other object judged against it now */
}

/* dict_version(d): d's version tag; dict_version(None): a fresh dict's (now). */
static PyObject *
dw_dict_version(PyObject *Py_UNUSED(m), PyObject *op)
{
    PyObject *made = NULL;
    if (op == Py_None) {
        made = PyDict_New();
        if (made == NULL)
            return NULL;
        op = made;
    }
    else if (!PyDict_Check(op)) {
        PyErr_SetString(PyExc_TypeError, "dict_version(dict or None)");
        return NULL;
    }
    _Py_COMP_DIAG_PUSH
    _Py_COMP_DIAG_IGNORE_DEPR_DECLS
    uint64_t v = ((PyDictObject *)op)->ma_version_tag;
    _Py_COMP_DIAG_POP
    Py_XDECREF(made);
    return PyLong_FromUnsignedLongLong((unsigned long long)v);
}


/* ---- full mode's re-bind of a known object, in C ----------------------------------
 *
 * FullBind(base, fallback, rate, bound, deep_cache, static_types, fast_types, buffer,
 * globals, deep_resume, deep_time, counters, unsized, ref_offset, bind_kind): a callable with
 * the signature of the Python closure ``bind(site, value, tok)`` (memscope._hooks),
 * handed to the C hot path as the bind it passes what it does not do itself. It does
 * the common case of full mode, the re-bind of an object whose deep size is known and
 * whose type and shallow size are unchanged (the row the closure would append, the
 * same fields), and calls ``fallback`` (the closure) for everything else: another
 * mode, a sampled site, a type off the fast path, an unknown or changed object, a
 * row that would fill the buffer (the closure flushes), an object of a type the death
 * watch wraps that it does not watch (dead, its death not drained yet: the object at
 * its address is another one, not bound before). It runs no Python code but
 * the type's C __sizeof__, so it never raises: what fails is the closure's to do.
 */

#define fb_now memscope_now_ns /* (_clock.h: the clock Python's rows read too) */

typedef struct {
    PyObject_HEAD
    Py_ssize_t base;
    PyObject *fallback, *rate, *bound, *deep_cache, *static_types, *fast_types;
    PyObject *buffer, *append, *globals, *deep_resume, *deep_time, *counters, *unsized;
    PyObject *bind_kind, *full_key, *flush_key, *skipped_key;
    Py_ssize_t ref_offset;
    vectorcallfunc vectorcall;
} FullBind;

static long long
fb_item(PyObject *seq, Py_ssize_t i, int *ok)
{
    PyObject *v = PyList_CheckExact(seq) && i < PyList_GET_SIZE(seq) ? PyList_GET_ITEM(seq, i)
                  : PyTuple_CheckExact(seq) && i < PyTuple_GET_SIZE(seq)
                      ? PyTuple_GET_ITEM(seq, i) : NULL;
    if (v == NULL || !PyLong_CheckExact(v)) {
        *ok = 0;
        return 0;
    }
    long long r = PyLong_AsLongLong(v);
    if (r == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        *ok = 0;
    }
    return r;
}

/* 1: recorded; 0: the closure's to do (nothing done that it would not do again) */
static int
fb_try(FullBind *self, PyObject *site_o, PyObject *value, PyObject *tok)
{
    int ok = 1;
    PyObject *full = PyDict_GetItemWithError(self->globals, self->full_key);
    if (full != Py_True || !PyLong_CheckExact(site_o) || !PyLong_CheckExact(tok))
        return 0;
    Py_ssize_t s = PyLong_AsSsize_t(site_o);
    if (s == -1 && PyErr_Occurred())
        return 0;
    s += self->base;
    if (s < 0 || !PyList_CheckExact(self->rate) || s >= PyList_GET_SIZE(self->rate) ||
        !PyList_CheckExact(self->bound) || s >= PyList_GET_SIZE(self->bound))
        return 0;
    if (fb_item(self->rate, s, &ok) != 0 || !ok)
        return 0; /* sampled or off: the closure decides */
    PyTypeObject *tp = Py_TYPE(value);
    PyObject *ft = PyDict_GetItemWithError(self->static_types, (PyObject *)tp);
    if (ft == NULL) {
        if (PyErr_Occurred())
            return 0;
        PyObject *key = PyLong_FromVoidPtr((void *)tp);
        if (key == NULL)
            return 0;
        ft = PyDict_GetItemWithError(self->fast_types, key);
        Py_DECREF(key);
        if (ft == NULL)
            return 0;
    }
    if (!PyTuple_CheckExact(ft) || PyTuple_GET_SIZE(ft) != 5 ||
        PyTuple_GET_ITEM(ft, 3) != Py_False)
        return 0; /* (a scalar: its size is its deep size, the closure's short path) */
    long long ti = fb_item(ft, 0, &ok), extra = fb_item(ft, 2, &ok);
    if (!ok)
        return 0;
    PyObject *sz = PyObject_CallOneArg(PyTuple_GET_ITEM(ft, 1), value);
    if (sz == NULL)
        return 0;
    long long size = PyLong_AsLongLong(sz);
    Py_DECREF(sz);
    if (size == -1 && PyErr_Occurred())
        return 0;
    size += extra;
    PyObject *oid = PyLong_FromVoidPtr((void *)value);
    if (oid == NULL)
        return 0;
    long long deep = -1;
    PyObject *c = PyDict_GetItemWithError(self->deep_cache, oid);
    if (c != NULL && PyTuple_CheckExact(c) && PyTuple_GET_SIZE(c) == 3 &&
        fb_item(c, 0, &ok) == ti && fb_item(c, 1, &ok) == size && ok) {
        deep = fb_item(c, 2, &ok);
    }
    else { /* left without a deep size (the share spent): (type index, size) */
        c = c == NULL && !PyErr_Occurred() ? PyDict_GetItemWithError(self->unsized, oid)
                                           : NULL;
        if (c == NULL || !PyTuple_CheckExact(c) || PyTuple_GET_SIZE(c) != 2 ||
            fb_item(c, 0, &ok) != ti || fb_item(c, 1, &ok) != size || !ok) {
            Py_DECREF(oid);
            return 0;
        }
    }
    if (started && tp->tp_weaklistoffset == 0 && watchable(tp) &&
        find((uintptr_t)value) == NULL) {
        Py_DECREF(oid);
        return 0; /* its death not drained yet: another object there, first bound */
    }
    int64_t t = fb_now();
    if (!ok || (deep < 0 && !(fb_item(self->deep_resume, 0, &ok) ==
                                  fb_item(self->deep_time, 1, &ok) &&
                              t < fb_item(self->deep_resume, 1, &ok) && ok))) {
        Py_DECREF(oid);
        return 0; /* (unknown, and a walk may be allowed now: the closure's) */
    }
    PyObject *flush_at = PyDict_GetItemWithError(self->globals, self->flush_key);
    Py_ssize_t n = PyObject_Length(self->buffer);
    if (n < 0 || flush_at == NULL || !PyLong_CheckExact(flush_at) ||
        n + 1 >= PyLong_AsSsize_t(flush_at)) {
        PyErr_Clear();
        Py_DECREF(oid);
        return 0; /* this row fills the buffer: the closure flushes */
    }
    PyObject *row = PyTuple_New(11);
    if (row == NULL) {
        Py_DECREF(oid);
        return 0;
    }
    long long vals[11] = {0, (long long)t, (long long)s, 0, 0, ti, size, deep,
                          (long long)Py_REFCNT(value) - self->ref_offset, -1, -1};
    for (int i = 0; i < 11; i++) {
        PyObject *v = i == 0 ? Py_NewRef(self->bind_kind) : i == 3 ? Py_NewRef(tok)
                      : i == 4 ? Py_NewRef(oid) : PyLong_FromLongLong(vals[i]);
        if (v == NULL) {
            Py_DECREF(row);
            Py_DECREF(oid);
            return 0;
        }
        PyTuple_SET_ITEM(row, i, v);
    }
    Py_DECREF(oid);
    PyObject *r = PyObject_CallOneArg(self->append, row);
    Py_DECREF(row);
    if (r == NULL)
        return 0;
    Py_DECREF(r);
    /* recorded: the rest cannot undo it (a failure here is dropped, not handed over) */
    if (PyList_SetItem(self->bound, s, PyLong_FromLong(1)) < 0)
        PyErr_Clear();
    if (deep < 0) { /* counters["deep_skipped"] += 1 */
        PyObject *was = PyDict_GetItemWithError(self->counters, self->skipped_key);
        PyObject *now = was != NULL && PyLong_CheckExact(was)
                            ? PyNumber_Add(was, _PyLong_GetOne_compat()) : NULL;
        if (now == NULL || PyDict_SetItem(self->counters, self->skipped_key, now) < 0)
            PyErr_Clear();
        Py_XDECREF(now);
    }
    return 1;
}

static PyObject *
FullBind_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    FullBind *self = (FullBind *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames == NULL && nargs == 3) {
        if (args[2] == Py_None)
            return Py_NewRef(args[1]);
        if (fb_try(self, args[0], args[1], args[2]))
            return Py_NewRef(args[1]);
        PyErr_Clear();
    }
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static int
FullBind_traverse(FullBind *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fallback);
    Py_VISIT(self->rate);
    Py_VISIT(self->bound);
    Py_VISIT(self->deep_cache);
    Py_VISIT(self->static_types);
    Py_VISIT(self->fast_types);
    Py_VISIT(self->buffer);
    Py_VISIT(self->append);
    Py_VISIT(self->globals);
    Py_VISIT(self->deep_resume);
    Py_VISIT(self->deep_time);
    Py_VISIT(self->counters);
    Py_VISIT(self->unsized);
    return 0;
}

static int
FullBind_clear(FullBind *self)
{
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->rate);
    Py_CLEAR(self->bound);
    Py_CLEAR(self->deep_cache);
    Py_CLEAR(self->static_types);
    Py_CLEAR(self->fast_types);
    Py_CLEAR(self->buffer);
    Py_CLEAR(self->append);
    Py_CLEAR(self->globals);
    Py_CLEAR(self->deep_resume);
    Py_CLEAR(self->deep_time);
    Py_CLEAR(self->counters);
    Py_CLEAR(self->unsized);
    Py_CLEAR(self->bind_kind);
    Py_CLEAR(self->full_key);
    Py_CLEAR(self->flush_key);
    Py_CLEAR(self->skipped_key);
    return 0;
}

static void
FullBind_dealloc(FullBind *self)
{
    PyObject_GC_UnTrack(self);
    FullBind_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
FullBind_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"base", "fallback", "rate", "bound", "deep_cache",
                             "static_types", "fast_types", "buffer", "globals",
                             "deep_resume", "deep_time", "counters", "unsized",
                             "ref_offset", "bind_kind", NULL};
    Py_ssize_t base, ref_offset;
    PyObject *fallback, *rate, *bound, *deep_cache, *static_types, *fast_types, *buffer;
    PyObject *globals, *deep_resume, *deep_time, *counters, *unsized, *bind_kind;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nOO!O!O!O!O!OO!OOO!O!nO:FullBind", kwlist,
                                     &base, &fallback, &PyList_Type, &rate, &PyList_Type,
                                     &bound, &PyDict_Type, &deep_cache, &PyDict_Type,
                                     &static_types, &PyDict_Type, &fast_types, &buffer,
                                     &PyDict_Type, &globals, &deep_resume, &deep_time,
                                     &PyDict_Type, &counters, &PyDict_Type, &unsized,
                                     &ref_offset, &bind_kind))
        return NULL;
    PyObject *append = PyObject_GetAttrString(buffer, "append");
    if (append == NULL)
        return NULL;
    FullBind *self = (FullBind *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(append);
        return NULL;
    }
    self->base = base;
    self->ref_offset = ref_offset;
    self->fallback = Py_NewRef(fallback);
    self->rate = Py_NewRef(rate);
    self->bound = Py_NewRef(bound);
    self->deep_cache = Py_NewRef(deep_cache);
    self->static_types = Py_NewRef(static_types);
    self->fast_types = Py_NewRef(fast_types);
    self->buffer = Py_NewRef(buffer);
    self->append = append;
    self->globals = Py_NewRef(globals);
    self->deep_resume = Py_NewRef(deep_resume);
    self->deep_time = Py_NewRef(deep_time);
    self->counters = Py_NewRef(counters);
    self->unsized = Py_NewRef(unsized);
    self->bind_kind = Py_NewRef(bind_kind);
    self->full_key = PyUnicode_InternFromString("_full");
    self->flush_key = PyUnicode_InternFromString("_flush_at");
    self->skipped_key = PyUnicode_InternFromString("deep_skipped");
    self->vectorcall = FullBind_vectorcall;
    if (self->full_key == NULL || self->flush_key == NULL || self->skipped_key == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyMemberDef FullBind_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(FullBind, vectorcall), READONLY, NULL},
    {"fallback", T_OBJECT, offsetof(FullBind, fallback), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject FullBind_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "memscope._deathwatch.FullBind",
    .tp_basicsize = sizeof(FullBind),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "full mode's re-bind of a known object (see the source's comment)",
    .tp_new = FullBind_new,
    .tp_dealloc = (destructor)FullBind_dealloc,
    .tp_traverse = (traverseproc)FullBind_traverse,
    .tp_clear = (inquiry)FullBind_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(FullBind, vectorcall),
    .tp_members = FullBind_members,
};


/* ---- a deep size over built-in data only ------------------------------------------
 *
 * deep_builtin(obj, max_objects, max_ns, found, large): what memscope.sizing.deep_size
 * measures (each object once, sys.getsizeof rounded up to 8 bytes, children as the
 * types' own traversal gives them, a dict's keys and values), when obj and everything
 * it reaches are exact list, tuple, dict, set, frozenset, int, float, complex, str,
 * bytes, bytearray, bool or None: (size, count, complete). None as soon as anything
 * else is reached (the Python walk does it then: classes, sizers, user objects). The
 * bytes, bytearray and str over ``large`` bytes it reaches are appended to ``found``
 * (a list, or None). Every object it looks at is held by a strong reference while it
 * does (sizing calls __sizeof__, which may allocate, so collect: nothing it holds can
 * go), and no container's insides are read across a call. */

#if PY_VERSION_HEX >= 0x030D0000
extern size_t _PySys_GetSizeOf(PyObject *);
#endif

typedef struct {
    PyObject **items;
    Py_ssize_t n, cap;
} ObjVec;

static int
vec_push(ObjVec *v, PyObject *o) /* steals o */
{
    if (v->n == v->cap) {
        Py_ssize_t cap = v->cap ? 2 * v->cap : 64;
        PyObject **p = PyMem_RawRealloc(v->items, (size_t)cap * sizeof(PyObject *));
        if (p == NULL) {
            Py_DECREF(o);
            return -1;
        }
        v->items = p;
        v->cap = cap;
    }
    v->items[v->n++] = o;
    return 0;
}

static void
vec_clear(ObjVec *v)
{
    for (Py_ssize_t i = 0; i < v->n; i++)
        Py_DECREF(v->items[i]);
    v->n = 0;
}

static void
vec_free(ObjVec *v)
{
    vec_clear(v);
    PyMem_RawFree(v->items);
    v->items = NULL;
    v->cap = 0;
}

static int
kid_visit(PyObject *o, void *arg)
{
    if (o != NULL)
        return vec_push((ObjVec *)arg, Py_NewRef(o)) < 0 ? -1 : 0;
    return 0;
}

typedef struct {
    uintptr_t *slots;
    size_t cap, used;
} AddrSet;

static int
aset_add(AddrSet *set, uintptr_t a) /* 1 added, 0 there already, -1 no memory */
{
    if ((set->used + 1) * 2 > set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 256;
        uintptr_t *t = PyMem_RawCalloc(cap, sizeof(uintptr_t));
        if (t == NULL)
            return -1;
        for (size_t i = 0; i < set->cap; i++) {
            uintptr_t x = set->slots[i];
            if (x) {
                size_t j = (size_t)((x >> 3) * 11400714819323198485ull) & (cap - 1);
                while (t[j])
                    j = (j + 1) & (cap - 1);
                t[j] = x;
            }
        }
        PyMem_RawFree(set->slots);
        set->slots = t;
        set->cap = cap;
    }
    size_t j = (size_t)((a >> 3) * 11400714819323198485ull) & (set->cap - 1);
    while (set->slots[j]) {
        if (set->slots[j] == a)
            return 0;
        j = (j + 1) & (set->cap - 1);
    }
    set->slots[j] = a;
    set->used++;
    return 1;
}

/* 2: a container, 1: a leaf, 0: not built-in data */
static int
builtin_kind(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyList_Type || tp == &PyTuple_Type || tp == &PyDict_Type ||
        tp == &PySet_Type || tp == &PyFrozenSet_Type)
        return 2;
    if (tp == &PyLong_Type || tp == &PyFloat_Type || tp == &PyUnicode_Type ||
        tp == &PyBytes_Type || tp == &PyBool_Type || o == Py_None ||
        tp == &PyComplex_Type || tp == &PyByteArray_Type)
        return 1;
    return 0;
}

static long long
rounded_size(PyObject *o)
{
    size_t s = _PySys_GetSizeOf(o);
    if (s == (size_t)-1) {
        PyErr_Clear();
        return 0;
    }
    return s > 0 ? (long long)((s + 7) & ~(size_t)7) : 0;
}

static PyObject *
dw_deep_builtin(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "deep_builtin(obj, max_objects, max_ns, found, large)");
        return NULL;
    }
    PyObject *obj = args[0], *found = args[3];
    long long max_objects = PyLong_AsLongLong(args[1]);
    long long max_ns = PyLong_AsLongLong(args[2]);
    long long large = PyLong_AsLongLong(args[4]);
    if (PyErr_Occurred())
        return NULL;
    if (found != Py_None && !PyList_CheckExact(found)) {
        PyErr_SetString(PyExc_TypeError, "found: a list or None");
        return NULL;
    }
    if (builtin_kind(obj) != 2)
        Py_RETURN_NONE;
    int64_t deadline = fb_now() + max_ns;
    ObjVec stack = {NULL, 0, 0}, kids = {NULL, 0, 0}, hits = {NULL, 0, 0};
    AddrSet seen = {NULL, 0, 0};
    long long total = rounded_size(obj), count = 1;
    int complete = 1, bail = 0, err = 0;
    if (aset_add(&seen, (uintptr_t)obj) < 0 || vec_push(&stack, Py_NewRef(obj)) < 0) {
        err = 1;
        goto done;
    }
    while (stack.n > 0) {
        PyObject *o = stack.items[--stack.n];
        if (fb_now() > deadline) {
            complete = 0;
            Py_DECREF(o);
            break;
        }
        if (PyDict_CheckExact(o)) { /* its keys and values */
            Py_ssize_t pos = 0;
            PyObject *k, *v;
            while (PyDict_Next(o, &pos, &k, &v)) {
                if (vec_push(&kids, Py_NewRef(k)) < 0 || vec_push(&kids, Py_NewRef(v)) < 0) {
                    err = 1;
                    break;
                }
            }
        }
        else if (Py_TYPE(o)->tp_traverse(o, kid_visit, &kids) < 0) {
            err = 1;
        }
        Py_DECREF(o);
        if (err)
            goto done;
        for (Py_ssize_t i = 0; i < kids.n && complete && !bail; i++) {
            PyObject *k = kids.items[i];
            int added = aset_add(&seen, (uintptr_t)k);
            if (added < 0) {
                err = 1;
                goto done;
            }
            if (!added)
                continue;
            int kind = builtin_kind(k);
            if (!kind) {
                bail = 1;
                break;
            }
            if (count >= max_objects || ((count & 4095) == 0 && fb_now() > deadline)) {
                complete = 0;
                break;
            }
            count++;
            long long size = rounded_size(k);
            total += size;
            if (kind == 2) {
                if (vec_push(&stack, Py_NewRef(k)) < 0) {
                    err = 1;
                    goto done;
                }
            }
            else if (found != Py_None && (PyBytes_CheckExact(k) || PyByteArray_CheckExact(k) ||
                                          (PyUnicode_CheckExact(k) && size > large))) {
                if (vec_push(&hits, Py_NewRef(k)) < 0) {
                    err = 1;
                    goto done;
                }
            }
        }
        vec_clear(&kids);
        if (!complete || bail)
            break;
    }
done:
    vec_free(&kids);
    vec_free(&stack);
    PyMem_RawFree(seen.slots);
    if (err) {
        vec_free(&hits);
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return NULL;
    }
    if (bail) {
        vec_free(&hits);
        Py_RETURN_NONE;
    }
    for (Py_ssize_t i = 0; i < hits.n; i++) {
        if (PyList_Append(found, hits.items[i]) < 0) {
            vec_free(&hits);
            return NULL;
        }
    }
    vec_free(&hits);
    return Py_BuildValue("(LLO)", total, count, complete ? Py_True : Py_False);
}

static PyMethodDef methods[] = {
    {"start", dw_start, METH_NOARGS,
     "start()\n--\n\nWrap the deallocators of list, tuple, dict, set, frozenset, bytes "
     "and bytearray (idempotent)."},
    {"stop", dw_stop, METH_NOARGS,
     "stop()\n--\n\nPut the deallocators back and forget every address."},
    {"watch", (PyCFunction)(void (*)(void))dw_watch, METH_FASTCALL,
     "watch(obj, stamp)\n--\n\nWatch obj's address until obj is deallocated; True if its "
     "type can be watched. A watched address keeps its first stamp."},
    {"watch_large", (PyCFunction)(void (*)(void))dw_watch_large, METH_FASTCALL,
     "watch_large(obj, stamp)\n--\n\nWatch an exact str whose block is larger than "
     "pymalloc's (freed through the raw allocator, hooked); True if watched."},
    {"since", dw_since, METH_O,
     "since(address)\n--\n\nThe stamp the object at address was first watched with, "
     "while that object lives; None otherwise."},
    {"deaths", dw_deaths, METH_NOARGS,
     "deaths()\n--\n\nThe addresses of watched objects deallocated since the last call."},
    {"deep_builtin", (PyCFunction)(void (*)(void))dw_deep_builtin, METH_FASTCALL,
     "deep_builtin(obj, max_objects, max_ns, found, large)\n--\n\nsizing.deep_size over "
     "built-in data only: (size, count, complete), or None if anything else is reached."},
    {"watched", dw_watched, METH_NOARGS,
     "watched()\n--\n\nThe addresses watched now (their objects are alive)."},
    {"pending", dw_pending, METH_NOARGS,
     "pending()\n--\n\nHow many deaths deaths() would return."},
    {"stats", dw_stats, METH_NOARGS, "stats()\n--\n\nwatched, capacity, lost, started."},
    {"older", (PyCFunction)(void (*)(void))dw_older, METH_FASTCALL,
     "older(obj, marker, cap)\n--\n\nWas obj tracked by the collector before marker "
     "was made? (False: no, or not known.)"},
    {"walked", dw_walked, METH_NOARGS,
     "walked()\n--\n\nHow many list nodes older() has stepped over, in all (its cost)."},
    {"pin", dw_pin, METH_O,
     "pin(marker)\n--\n\nKeep a reference to a poll's marker that the collector does "
     "not see, so no collection moves it, until unpin(marker)."},
    {"unpin", dw_unpin, METH_O,
     "unpin(marker)\n--\n\nDrop pin's reference; True if the marker was pinned."},
    {"dict_version", dw_dict_version, METH_O,
     "dict_version(d)\n--\n\nThe dict's version tag (None: a new dict's, now)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "memscope._deathwatch",
    "Deaths of objects that refuse weak references (see the source's comment).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__deathwatch(void)
{
    if (PyType_Ready(&FullBind_Type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&FullBind_Type);
    if (PyModule_AddObject(m, "FullBind", (PyObject *)&FullBind_Type) < 0) {
        Py_DECREF(&FullBind_Type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

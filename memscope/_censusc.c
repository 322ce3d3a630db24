/* memscope._censusc: the census's records and walk in C (memscope.census._Census).
 *
 * A Records object does for one census what the pure-Python _Census does with its
 * ``rec`` dict (id -> list laid out as _OBJ.._VISIT), field for field: root(r, obj,
 * holders, rootrefs) is _Census.walk_root after its kind and stop checks (the record, or
 * a meet, then the first walk below: _Census.descend); meet and spread_all carry labels
 * down; unexplained(seen) and settle(seen) are run()'s final "held elsewhere" pass;
 * totals(n) is _Census.totals. It calls back into the census where the Python walk runs
 * code of its own: census.kind(tp, sample) for a type census.kinds does not have yet,
 * census.frame_of(k) for generators found below a holder, census.instrumented(k) while
 * spreading, census.children(o, kd) for kinds other than _PLAIN and _GEN, and kd.size(o)
 * where the kind has no C __sizeof__; in the same order. tests/test_census_accel.py
 * walks random heaps with both and compares every record, the totals and those calls.
 *
 * Why in C, records included: a Python record (a list, its ints, a dict entry) costs
 * about 300 bytes, and one is made for every object with several holders (56,000 for a
 * tree with parent links). Here a record is 56 bytes, and every array this census grows
 * (records, the address map, the sharer lists, the stacks) is mapped memory of its own
 * (mmap), given back to the system when the census ends: a census's working memory
 * neither stays resident afterwards nor sits among the program's objects.
 *
 * What it does itself, without calling back into Python:
 * - the referents of _PLAIN and _GEN objects: the type's tp_traverse with a callback that
 *   collects them, as gc.get_referents does (without its audit event); a dict's keys go
 *   first when the traversal did not visit them (a str-keyed dict: values only), as
 *   census.children does;
 * - sizes: sizeof(o) + extra (the _Kind's C __sizeof__ and constant), rounded up to 8,
 *   as _Kind.size does when the kind has a C __sizeof__;
 * - the single-holder rule from Py_REFCNT (below).
 *
 * Holders. The Python walk calls sys.getrefcount(k) in its loop and compares it with
 * _SINGLE, calibrated for that loop's shape. Here the count is read directly: while k is
 * looked at, Py_REFCNT(k) counts its holders' references, one for each slot of the kids
 * buffer that holds k, and the one this loop takes on k. So
 *     holders = Py_REFCNT(k) - 2      (OWN_REFS: the kids slot being looked at, and ours)
 * is what "n - _SINGLE + 1" is in Python: one holder holding k once gives 1. When k sits
 * in several slots of one holder, every slot past the first counts once too many on both
 * sides, and the _VISIT rule takes it back as it does in Python. Everything else this
 * code holds mirrors a reference the Python walk holds at the same moment: a record its
 * object (Python: rec[_OBJ]), the stacks (Python: their tuples and lists), the object
 * being entered and the kids buffer, so the counts read are the same from either walk.
 * A recorded object is never a single-holder one (its record holds it too), so a
 * referent found by tp_traverse with holders <= 1 is known not to be recorded without
 * looking: the common case, the strings of a list, costs a count, a type check, a size.
 *
 * Errors. An exception from census.children (or from len() of a dict) skips the object,
 * as the Python walk's ``except Exception: continue`` does; running out of memory returns
 * NULL (MemoryError). An exception from the callbacks the Python walk does not guard
 * (kind, frame_of, instrumented, a leaf's __sizeof__) propagates, as it does there, the
 * records made so far kept.
 *
 * The GIL is held throughout; the only Python code run is what the Python walk runs.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifndef _WIN32
#include <sys/mman.h>
#endif

/* the kinds and labels: memscope/census.py (_STOP.._NUMPY, SHARED, ELSEWHERE) */
enum { K_STOP, K_GEN, K_LEAF, K_SIZED, K_PLAIN, K_DECLARED, K_NUMPY };
#define SHARED (-1)
#define ELSEWHERE (-2)
#define MAX_SHARERS 8
#define NO_SHARERS (-1)
#define OWN_REFS 2 /* references to k this code holds while it looks at k */

static PyObject *s_kinds, *s_stop, *s_kind, *s_frame_of, *s_children, *s_instrumented,
    *s_how, *s_is_dict, *s_values_apart, *s_sizeof, *s_extra, *s_size;

/* ---- memory of its own ---------------------------------------------------------------
 * The census's arrays are mapped apart from the heap, in steps of REGION_STEP bytes:
 * freed, they go back to the system at once (malloc would keep them, among the
 * program's objects, and they would read as the program's memory). */

#define REGION_STEP ((size_t)64 << 10)

static size_t
region_round(size_t bytes)
{
    return (bytes + REGION_STEP - 1) / REGION_STEP * REGION_STEP;
}

/* A zeroed region of ``bytes`` (rounded up) holding the first ``keep`` bytes of ``old``
 * (a region of ``old_bytes``, then freed), or NULL with MemoryError. */
static void *
region_move(void *old, size_t old_bytes, size_t keep, size_t bytes)
{
    bytes = region_round(bytes);
#if defined(MAP_ANONYMOUS) && defined(MREMAP_MAYMOVE)
    if (old != NULL && bytes >= region_round(old_bytes)) {
        /* Linux: the old pages moved into the larger region, not copied into new ones
         * (a copy faulted every page in again: with the map's rehashes, a quarter of a
         * large census's time went to page faults); past ``keep``, zeroed as a new
         * region is (those pages are resident already) */
        size_t ob = region_round(old_bytes);
        void *p = mremap(old, ob, bytes, MREMAP_MAYMOVE);
        if (p != MAP_FAILED) {
            if (ob > keep)
                memset((char *)p + keep, 0, ob - keep);
            return p;
        }
    }
#endif
#if defined(MAP_ANONYMOUS)
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        PyErr_NoMemory();
        return NULL;
    }
#else
    void *p = PyMem_RawCalloc(1, bytes);
    if (p == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
#endif
    if (old != NULL) {
        memcpy(p, old, keep);
#if defined(MAP_ANONYMOUS)
        munmap(old, region_round(old_bytes));
#else
        (void)old_bytes;
        PyMem_RawFree(old);
#endif
    }
    return p;
}

static void
region_free(void *p, size_t bytes)
{
    if (p == NULL)
        return;
#if defined(MAP_ANONYMOUS)
    munmap(p, region_round(bytes));
#else
    (void)bytes;
    PyMem_RawFree(p);
#endif
}

/* ``arr`` (``n`` items of ``item`` bytes in ``*cap`` slots) moved to a region with
 * room for ``need`` (at least doubled); the new array, or NULL with MemoryError. */
static void *
reserve(void *arr, Py_ssize_t *cap, Py_ssize_t n, Py_ssize_t need, size_t item)
{
    Py_ssize_t want = *cap ? *cap * 2 : 1;
    if (want < need)
        want = need;
    size_t bytes = region_round((size_t)want * item);
    void *p = region_move(arr, (size_t)*cap * item, (size_t)n * item, bytes);
    if (p != NULL)
        *cap = (Py_ssize_t)(bytes / item);
    return p;
}

/* Room for ``need`` items in the growable region ``arr`` (``n`` used, ``cap`` slots); on
 * no memory, MemoryError and ``fail``. */
#define RESERVE(arr, n, cap, need, fail)                                           \
    do {                                                                           \
        if ((need) > (cap)) {                                                      \
            void *p_ = reserve((arr), &(cap), (n), (need), sizeof(*(arr)));        \
            if (p_ == NULL) {                                                      \
                fail;                                                              \
            }                                                                      \
            (arr) = p_;                                                            \
        }                                                                          \
    } while (0)

/* ---- a growable array of strong references -------------------------------------- */

typedef struct {
    PyObject **items;
    Py_ssize_t n, cap;
} Buf;

static int
buf_reserve(Buf *b, Py_ssize_t need)
{
    RESERVE(b->items, b->n, b->cap, need, return -1);
    return 0;
}

static int
buf_visit(PyObject *o, void *arg)
{
    Buf *b = (Buf *)arg;
    if (buf_reserve(b, b->n + 1) < 0)
        return -1;
    Py_INCREF(o);
    b->items[b->n++] = o;
    return 0;
}

static void
buf_clear(Buf *b)
{
    while (b->n > 0) {
        PyObject *o = b->items[--b->n];
        Py_DECREF(o);
    }
}

static void
buf_free(Buf *b)
{
    buf_clear(b);
    region_free(b->items, (size_t)b->cap * sizeof(PyObject *));
    b->items = NULL;
    b->cap = 0;
}
/* ---- what the walk knows of a type (a _Kind), cached for one call ---------------- */

typedef struct {
    PyTypeObject *tp; /* strong */
    PyObject *kind;   /* strong: the _Kind */
    PyObject *sizeof_; /* strong, or NULL when the kind's sizeof is None */
    PyCFunction direct; /* sizeof_'s C function, when a METH_NOARGS method descriptor */
    long long extra, how;
    int is_dict, values_apart;
} KindInfo;

typedef struct {
    KindInfo *slots;
    Py_ssize_t cap, used; /* cap: a power of two */
} KindCache;

static Py_ssize_t
kc_index(KindCache *c, PyTypeObject *tp)
{
    size_t mask = (size_t)c->cap - 1;
    size_t i = (size_t)(((uintptr_t)tp >> 4) * 0x9E3779B97F4A7C15ull) & mask;
    while (c->slots[i].tp != NULL && c->slots[i].tp != tp)
        i = (i + 1) & mask;
    return (Py_ssize_t)i;
}

static KindInfo *
kc_get(KindCache *c, PyTypeObject *tp)
{
    if (c->cap == 0)
        return NULL;
    KindInfo *ki = &c->slots[kc_index(c, tp)];
    return ki->tp == tp ? ki : NULL;
}

static void
kc_free(KindCache *c)
{
    for (Py_ssize_t i = 0; i < c->cap; i++) {
        KindInfo *ki = &c->slots[i];
        if (ki->tp != NULL) {
            Py_DECREF(ki->tp);
            Py_DECREF(ki->kind);
            Py_XDECREF(ki->sizeof_);
        }
    }
    PyMem_Free(c->slots);
    c->slots = NULL;
    c->cap = c->used = 0;
}

static int
kc_grow(KindCache *c)
{
    KindCache bigger = {NULL, c->cap ? c->cap * 2 : 32, 0};
    bigger.slots = PyMem_Calloc((size_t)bigger.cap, sizeof(KindInfo));
    if (bigger.slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < c->cap; i++) {
        if (c->slots[i].tp != NULL) {
            bigger.slots[kc_index(&bigger, c->slots[i].tp)] = c->slots[i];
            bigger.used++;
        }
    }
    PyMem_Free(c->slots);
    *c = bigger;
    return 0;
}

static int
get_long_attr(PyObject *o, PyObject *name, long long *out)
{
    PyObject *v = PyObject_GetAttr(o, name);
    if (v == NULL)
        return -1;
    *out = PyLong_AsLongLong(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int
get_bool_attr(PyObject *o, PyObject *name, int *out)
{
    PyObject *v = PyObject_GetAttr(o, name);
    if (v == NULL)
        return -1;
    *out = PyObject_IsTrue(v);
    Py_DECREF(v);
    return *out < 0 ? -1 : 0;
}

/* Remember ``kind`` (a _Kind) for ``tp``; a borrowed pointer into the cache, or NULL. */
static KindInfo *
kc_put(KindCache *c, PyTypeObject *tp, PyObject *kind)
{
    KindInfo info;
    memset(&info, 0, sizeof info);
    if (get_long_attr(kind, s_how, &info.how) < 0
        || get_bool_attr(kind, s_is_dict, &info.is_dict) < 0
        || get_bool_attr(kind, s_values_apart, &info.values_apart) < 0
        || get_long_attr(kind, s_extra, &info.extra) < 0)
        return NULL;
    PyObject *sz = PyObject_GetAttr(kind, s_sizeof);
    if (sz == NULL)
        return NULL;
    if (sz == Py_None) {
        Py_DECREF(sz);
    } else {
        info.sizeof_ = sz;
        if (Py_IS_TYPE(sz, &PyMethodDescr_Type)) {
            PyMethodDescrObject *d = (PyMethodDescrObject *)sz;
            int call = d->d_method->ml_flags
                       & (METH_VARARGS | METH_FASTCALL | METH_NOARGS | METH_O | METH_KEYWORDS
#ifdef METH_METHOD
                          | METH_METHOD
#endif
                       );
            if (call == METH_NOARGS && PyType_IsSubtype(tp, PyDescr_TYPE(d)))
                info.direct = d->d_method->ml_meth;
        }
    }
    if ((c->used + 1) * 2 > c->cap && kc_grow(c) < 0) {
        Py_XDECREF(info.sizeof_);
        return NULL;
    }
    Py_INCREF(tp);
    Py_INCREF(kind);
    info.tp = tp;
    info.kind = kind;
    KindInfo *slot = &c->slots[kc_index(c, tp)];
    *slot = info;
    c->used++;
    return slot;
}

/* ---- sizes ------------------------------------------------------------------------- */

static PyObject *
call_sizeof(KindInfo *ki, PyObject *o)
{
    if (ki->direct != NULL) {
        if (Py_EnterRecursiveCall(" in __sizeof__"))
            return NULL;
        PyObject *r = ki->direct(o, NULL);
        Py_LeaveRecursiveCall();
        return r;
    }
    return PyObject_CallOneArg(ki->sizeof_, o);
}

/* A _LEAF's size: ``size = kd.sizeof(k) + kd.extra; size = (size + 7) & ~7`` (errors
 * propagate, as there). 0 or -1 (an exception). */
static int
leaf_size(KindInfo *ki, PyObject *o, long long *out)
{
    PyObject *r = call_sizeof(ki, o);
    if (r == NULL)
        return -1;
    if (!PyLong_Check(r)) {
        PyErr_Format(PyExc_TypeError, "__sizeof__ returned %.100s, not int", Py_TYPE(r)->tp_name);
        Py_DECREF(r);
        return -1;
    }
    long long s = PyLong_AsLongLong(r);
    Py_DECREF(r);
    if (s == -1 && PyErr_Occurred())
        return -1;
    s += ki->extra;
    *out = (s + 7) & ~7LL;
    return 0;
}

/* Any other kind's size: ``kd.size(k)``, which with a C __sizeof__ is
 * ``s = int(sizeof(o)) + extra`` (0 on an Exception), ``(s + 7) & ~7 if s > 0 else 0``. */
static int
kind_size(KindInfo *ki, PyObject *o, long long *out)
{
    if (ki->sizeof_ == NULL) {
        PyObject *r = PyObject_CallMethodOneArg(ki->kind, s_size, o);
        if (r == NULL)
            return -1;
        *out = PyLong_AsLongLong(r);
        Py_DECREF(r);
        return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
    }
    long long s = 0;
    PyObject *r = call_sizeof(ki, o);
    PyObject *i = r == NULL ? NULL : PyNumber_Long(r);
    Py_XDECREF(r);
    if (i != NULL) {
        s = PyLong_AsLongLong(i);
        Py_DECREF(i);
    }
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return -1;
        PyErr_Clear();
        *out = 0;
        return 0;
    }
    s += ki->extra;
    *out = s > 0 ? ((s + 7) & ~7LL) : 0;
    return 0;
}

/* ---- tables keyed by address ---------------------------------------------------- */

/* An open-addressing map from an address to an index (>= 0), in regions of its own. */
typedef struct {
    void **keys;
    Py_ssize_t *vals;
    Py_ssize_t cap, used; /* cap: a power of two, or 0 */
    int shift;
} PtrMap;

static size_t
pm_slot(PtrMap *m, void *p)
{
    size_t mask = (size_t)m->cap - 1;
    size_t i = (size_t)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) >> m->shift);
    while (m->keys[i] != NULL && m->keys[i] != p)
        i = (i + 1) & mask;
    return i;
}

static Py_ssize_t
pm_get(PtrMap *m, void *p)
{
    if (m->used == 0)
        return -1;
    size_t i = pm_slot(m, p);
    return m->keys[i] == p ? m->vals[i] : -1;
}

static void
pm_free(PtrMap *m)
{
    region_free(m->keys, (size_t)m->cap * sizeof(void *));
    region_free(m->vals, (size_t)m->cap * sizeof(Py_ssize_t));
    memset(m, 0, sizeof *m);
}

static int
pm_put(PtrMap *m, void *p, Py_ssize_t v)
{
    if ((m->used + 1) * 2 > m->cap) {
        /* a region is at least 64 KiB: start with as many slots as that holds */
        Py_ssize_t cap = m->cap ? m->cap * 2 : (Py_ssize_t)(REGION_STEP / sizeof(void *));
        PtrMap big = {NULL, NULL, cap, 0, 0};
        int bits = 0;
        while (((Py_ssize_t)1 << bits) < big.cap)
            bits++;
        big.shift = 64 - bits;
        big.keys = region_move(NULL, 0, 0, (size_t)big.cap * sizeof(void *));
        big.vals = big.keys == NULL ? NULL
                                    : region_move(NULL, 0, 0, (size_t)big.cap * sizeof(Py_ssize_t));
        if (big.vals == NULL) {
            pm_free(&big);
            return -1;
        }
        for (Py_ssize_t i = 0; i < m->cap; i++) {
            if (m->keys[i] != NULL) {
                size_t j = pm_slot(&big, m->keys[i]);
                big.keys[j] = m->keys[i];
                big.vals[j] = m->vals[i];
                big.used++;
            }
        }
        pm_free(m);
        *m = big;
    }
    size_t i = pm_slot(m, p);
    if (m->keys[i] == NULL)
        m->used++;
    m->keys[i] = p;
    m->vals[i] = v;
    return 0;
}

/* ---- the records ------------------------------------------------------------------- */

/* One remembered object (census.py's record list: _OBJ.._VISIT) */
typedef struct {
    PyObject *obj;   /* strong, as rec[_OBJ] */
    int32_t label;   /* a root's index, SHARED or ELSEWHERE */
    int32_t sharers; /* an offset into the sharer lists, or NO_SHARERS (None) */
    int64_t indeg, priv, holders, rootrefs, visit;
    int64_t mark; /* the spread_all call that last passed it (its ``seen_here``) */
    int64_t running; /* references from what running frames' slots hold (held()) */
} Rec;

typedef struct {
    PyObject *obj;    /* strong */
    Py_ssize_t owner; /* the record it belongs to */
} Item;

typedef struct {
    PyObject_HEAD
    PyObject *census, *kinds; /* strong */
    KindCache cache;
    PtrMap stop; /* census.stop (ids of module dicts) as addresses */
    PtrMap map;  /* object -> index in recs */
    Rec *recs;
    Py_ssize_t n, cap;
    /* sharer lists, never changed once made: [count, root, root, ...] */
    int32_t *pool;
    Py_ssize_t npool, cappool;
    int32_t last_list; /* the list made last (a spread makes runs of equal ones) */
    /* the walk: its stack, the referents of the object entered */
    Item *stack;
    Py_ssize_t nstack, capstack;
    Buf kids;
    /* spreading (inside a walk, when a meet changes a label): its own stack, referents */
    Buf sstack, skids;
    int64_t visit, objects, marks;
} Records;

static int32_t
sharers_len(Records *s, int32_t off)
{
    return off == NO_SHARERS ? 0 : s->pool[off];
}

/* 1 if the list at ``off`` (NO_SHARERS: None) is the list ``roots[:n]`` (n <= 8) */
static int
sharers_is(Records *s, int32_t off, const int32_t *roots, int32_t n)
{
    return off != NO_SHARERS && s->pool[off] == n
           && memcmp(s->pool + off + 1, roots, (size_t)n * sizeof(int32_t)) == 0;
}

/* Python's ``a == b`` of two sharer fields (None or lists) */
static int
sharers_same(Records *s, int32_t a, int32_t b)
{
    if (a == b)
        return 1;
    if (a == NO_SHARERS || b == NO_SHARERS)
        return 0;
    return sharers_is(s, a, s->pool + b + 1, s->pool[b]);
}

/* The offset of a list of the first (at most MAX_SHARERS) of ``roots``; -2 on no memory. */
static int32_t
sharers_make(Records *s, const int32_t *roots, int32_t n)
{
    if (n > MAX_SHARERS)
        n = MAX_SHARERS;
    if (s->last_list != NO_SHARERS && sharers_is(s, s->last_list, roots, n))
        return s->last_list;
    if (s->npool + n + 1 > INT32_MAX) {
        PyErr_NoMemory();
        return -2;
    }
    RESERVE(s->pool, s->npool, s->cappool, s->npool + n + 1, return -2);
    int32_t off = (int32_t)s->npool;
    s->pool[off] = n;
    memcpy(s->pool + off + 1, roots, (size_t)n * sizeof(int32_t));
    s->npool += n + 1;
    s->last_list = off;
    return off;
}

/* ``mine + [x for x in theirs if x not in mine]`` into ``out`` (room for 2 * MAX_SHARERS
 * + 1); its length. */
static int32_t
sharers_merge(Records *s, int32_t old_label, int32_t old_sharers, int32_t label,
              int32_t sharers, int32_t *out)
{
    int32_t n = 0;
    if (old_label >= 0) {
        out[n++] = old_label;
    } else {
        for (int32_t i = 0; i < sharers_len(s, old_sharers); i++)
            out[n++] = s->pool[old_sharers + 1 + i];
    }
    int32_t mine = n;
    int32_t one[1] = {label};
    const int32_t *theirs = label >= 0 ? one : (sharers == NO_SHARERS ? NULL : s->pool + sharers + 1);
    int32_t nt = label >= 0 ? 1 : sharers_len(s, sharers);
    for (int32_t i = 0; i < nt; i++) {
        int found = 0;
        for (int32_t j = 0; j < mine; j++) {
            if (out[j] == theirs[i]) {
                found = 1;
                break;
            }
        }
        if (!found)
            out[n++] = theirs[i];
    }
    return n;
}

static Py_ssize_t
rec_find(Records *s, PyObject *k)
{
    return pm_get(&s->map, k);
}

/* A new record for ``k`` (strong reference taken); its index, or -1 with an exception. */
static Py_ssize_t
rec_add(Records *s, PyObject *k, int32_t label, int32_t sharers, int64_t indeg, int64_t priv,
        int64_t holders, int64_t rootrefs, int64_t visit)
{
    RESERVE(s->recs, s->n, s->cap, s->n + 1, return -1);
    if (pm_put(&s->map, k, s->n) < 0)
        return -1;
    Rec *r = &s->recs[s->n];
    r->obj = Py_NewRef(k);
    r->label = label;
    r->sharers = sharers;
    r->indeg = indeg;
    r->priv = priv;
    r->holders = holders;
    r->rootrefs = rootrefs;
    r->visit = visit;
    r->mark = 0;
    r->running = 0;
    return s->n++;
}

/* ---- calls into the census ---------------------------------------------------------- */

/* The kind of ``tp`` as census.kinds has it (NULL without an exception: none yet). */
static KindInfo *
known_kind(Records *s, PyTypeObject *tp)
{
    KindInfo *ki = kc_get(&s->cache, tp);
    if (ki != NULL)
        return ki;
    PyObject *kind = PyDict_GetItemWithError(s->kinds, (PyObject *)tp);
    if (kind == NULL)
        return NULL;
    Py_INCREF(kind);
    ki = kc_put(&s->cache, tp, kind);
    Py_DECREF(kind);
    return ki;
}

/* census.kind(tp, sample): the kind, made if new (NULL with an exception) */
static KindInfo *
kind_of(Records *s, PyTypeObject *tp, PyObject *sample)
{
    KindInfo *ki = known_kind(s, tp);
    if (ki != NULL || PyErr_Occurred())
        return ki;
    PyObject *kind = PyObject_CallMethodObjArgs(s->census, s_kind, (PyObject *)tp, sample, NULL);
    if (kind == NULL)
        return NULL;
    ki = kc_put(&s->cache, tp, kind);
    Py_DECREF(kind);
    return ki;
}

/* census.frame_of(k) or census.instrumented(k): 1, 0 or -1 */
static int
ask(Records *s, PyObject *method, PyObject *k)
{
    PyObject *r = PyObject_CallMethodOneArg(s->census, method, k);
    if (r == NULL)
        return -1;
    int t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t;
}

/* 1: the walk stops at ``k`` (a program object, a module's globals), 0: it goes on. */
static int
stops_at(Records *s, KindInfo *ki, PyObject *k)
{
    if (ki->how == K_STOP)
        return 1;
    return ki->is_dict && pm_get(&s->stop, k) >= 0;
}

/* Fill ``kids`` with what ``o`` references (census.children(o, kd)). 1: done, 0: skip
 * ``o`` (an Exception, as the Python walk's ``except Exception: continue``), -1: error.
 * *traversed is set when the referents came from tp_traverse (each one a reference
 * ``o`` holds). */
static int
collect(Records *s, Buf *kids, PyObject *o, KindInfo *ki, int *traversed)
{
    *traversed = 0;
    if (ki->how == K_PLAIN || ki->how == K_GEN) {
        traverseproc trav = Py_TYPE(o)->tp_traverse;
        if (PyObject_IS_GC(o) && trav != NULL) {
            if (trav(o, buf_visit, kids) != 0) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_RuntimeError, "tp_traverse failed");
                return -1;
            }
        }
        *traversed = 1;
        if (ki->is_dict && PyDict_Check(o)) {
            /* census._keys_traversed: the dict's own traversal visits value then key
             * of each entry, but only the values when every key is a str; a subclass
             * puts what it holds first. Keys were visited iff the last 2n referents
             * start with the first entry's value and key. dict's own size and items:
             * no __len__ of a subclass runs. */
            Py_ssize_t n = PyDict_GET_SIZE(o), pos = 0;
            PyObject *key, *value;
            int traversed_keys = 1;
            if (n > 0) {
                traversed_keys = 0;
                if (kids->n >= 2 * n && PyDict_Next(o, &pos, &key, &value))
                    traversed_keys = kids->items[kids->n - 2 * n] == value
                        && kids->items[kids->n - 2 * n + 1] == key;
            }
            if (!traversed_keys) { /* a str-keyed dict: values only; keys go first */
                Py_ssize_t nk = n, i = 0;
                pos = 0;
                if (buf_reserve(kids, kids->n + nk) < 0)
                    return -1;
                memmove(kids->items + nk, kids->items, (size_t)kids->n * sizeof(PyObject *));
                while (i < nk && PyDict_Next(o, &pos, &key, &value)) {
                    Py_INCREF(key);
                    kids->items[i++] = key;
                }
                if (i < nk) /* cannot happen: the dict does not change meanwhile */
                    memmove(kids->items + i, kids->items + nk,
                            (size_t)kids->n * sizeof(PyObject *));
                kids->n += i;
            }
        }
        return 1;
    }
    PyObject *r = PyObject_CallMethodObjArgs(s->census, s_children, o, ki->kind, NULL);
    PyObject *list = r == NULL || PyList_CheckExact(r) ? r : PySequence_List(r);
    if (list != r)
        Py_XDECREF(r);
    if (list == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return -1;
        PyErr_Clear();
        return 0;
    }
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (buf_reserve(kids, kids->n + n) < 0) {
        Py_DECREF(list);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = PyList_GET_ITEM(list, i);
        Py_INCREF(k);
        kids->items[kids->n++] = k;
    }
    Py_DECREF(list);
    return 1;
}
/* ---- spreading labels --------------------------------------------------------------- */

static int
is_generator(PyObject *k) /* type(k) in census._GEN_SET */
{
    return PyGen_CheckExact(k) || PyCoro_CheckExact(k) || PyAsyncGen_CheckExact(k);
}

/* census.spread_all: carry each record's label down to what it reaches (no counting:
 * the first walk counted every edge), each object looked at once. */
static int
spread_all(Records *s, const Py_ssize_t *tops, Py_ssize_t ntops)
{
    int64_t mark = ++s->marks;
    Buf *stack = &s->sstack, *kids = &s->skids;
    int rc = 0;
    for (Py_ssize_t t = 0; t < ntops && rc == 0; t++) {
        Rec *top = &s->recs[tops[t]];
        PyObject *start = top->obj;
        KindInfo *ki = known_kind(s, Py_TYPE(start));
        if (ki == NULL) {
            if (PyErr_Occurred())
                return -1;
            continue; /* a type never entered: nothing below it */
        }
        if ((ki->how < K_PLAIN && ki->how != K_GEN) || top->mark == mark)
            continue; /* a leaf: nothing below it */
        if (ki->how == K_GEN) {
            int inst = ask(s, s_instrumented, start);
            if (inst < 0)
                return -1;
            if (inst)
                continue; /* its locals are roots of their own */
        }
        top = &s->recs[tops[t]];
        top->mark = mark;
        int32_t label = top->label, sharers = top->sharers;
        if (buf_visit(start, stack) < 0)
            return -1;
        while (stack->n > 0 && rc == 0) {
            PyObject *o = stack->items[--stack->n]; /* our reference, now */
            KindInfo *oki = known_kind(s, Py_TYPE(o));
            int traversed, got = oki == NULL ? -1 : collect(s, kids, o, oki, &traversed);
            if (oki == NULL && !PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, (PyObject *)Py_TYPE(o)); /* kinds[type(o)] */
            if (got < 0)
                rc = -1;
            for (Py_ssize_t i = 0; got > 0 && rc == 0 && i < kids->n; i++) {
                PyObject *k = kids->items[i];
                Py_INCREF(k); /* the Python loop's variable (one of OWN_REFS) */
                Py_ssize_t idx = rec_find(s, k);
                if (idx < 0) {
                    Py_ssize_t holders = Py_REFCNT(k) - OWN_REFS;
                    KindInfo *kki = kind_of(s, Py_TYPE(k), k);
                    if (kki == NULL) {
                        rc = -1;
                    } else {
                        int enter = kki->how >= K_PLAIN;
                        if (!enter && kki->how == K_GEN) {
                            int inst = ask(s, s_instrumented, k);
                            enter = inst == 0;
                            if (inst < 0)
                                rc = -1;
                        }
                        /* a single-holder object: look through it */
                        if (rc == 0 && enter && holders <= 1 && buf_visit(k, stack) < 0)
                            rc = -1;
                    }
                    Py_DECREF(k);
                    continue;
                }
                Rec *r = &s->recs[idx];
                if (r->mark == mark) {
                    Py_DECREF(k);
                    continue;
                }
                r->mark = mark;
                int32_t old = r->label;
                if (old == ELSEWHERE || (old == label && sharers_same(s, r->sharers, sharers))) {
                    Py_DECREF(k);
                    continue;
                }
                if (label == ELSEWHERE) {
                    r->label = ELSEWHERE;
                    r->sharers = NO_SHARERS;
                } else {
                    int32_t merged[2 * MAX_SHARERS + 1];
                    int32_t n = sharers_merge(s, old, r->sharers, SHARED, sharers, merged);
                    if (n > MAX_SHARERS)
                        n = MAX_SHARERS;
                    if (old == SHARED && sharers_is(s, r->sharers, merged, n)) {
                        Py_DECREF(k);
                        continue;
                    }
                    int32_t off = sharers_make(s, merged, n);
                    if (off == -2) {
                        rc = -1;
                        Py_DECREF(k);
                        continue;
                    }
                    r = &s->recs[idx];
                    r->label = SHARED;
                    r->sharers = off;
                }
                int enter = 1;
                if (is_generator(k)) {
                    int inst = ask(s, s_instrumented, k);
                    enter = inst == 0;
                    if (inst < 0)
                        rc = -1;
                }
                if (rc == 0 && enter && buf_visit(k, stack) < 0)
                    rc = -1;
                Py_DECREF(k);
            }
            buf_clear(kids);
            Py_DECREF(o);
        }
    }
    buf_clear(stack);
    return rc;
}

/* census.meet: record ``idx`` is reached again, from ``label`` (a root, SHARED with
 * ``sharers``, or ELSEWHERE): merge, and spread what changed below it. */
static int
meet(Records *s, Py_ssize_t idx, int32_t label, int32_t sharers)
{
    Rec *r = &s->recs[idx];
    int32_t old = r->label, new_label, new_sharers;
    if (old == ELSEWHERE)
        return 0;
    if (label == ELSEWHERE) {
        new_label = ELSEWHERE;
        new_sharers = NO_SHARERS;
    } else {
        int32_t merged[2 * MAX_SHARERS + 1];
        int32_t n = sharers_merge(s, old, r->sharers, label, sharers, merged);
        int32_t mine = old >= 0 ? 1 : sharers_len(s, r->sharers);
        if (n == mine && old == SHARED)
            return 0;
        if (n == 1)
            return 0;
        if (n > MAX_SHARERS)
            n = MAX_SHARERS;
        if (old == SHARED && sharers_is(s, r->sharers, merged, n))
            return 0;
        new_label = SHARED;
        new_sharers = sharers_make(s, merged, n);
        if (new_sharers == -2)
            return -1;
        r = &s->recs[idx];
    }
    r->label = new_label;
    r->sharers = new_sharers;
    if (old != SHARED || new_label == ELSEWHERE)
        return spread_all(s, &idx, 1);
    return 0;
}

/* ---- the first walk below a new record ---------------------------------------------- */

static int
push(Records *s, PyObject *obj, Py_ssize_t owner)
{
    RESERVE(s->stack, s->nstack, s->capstack, s->nstack + 1, return -1);
    s->stack[s->nstack].obj = Py_NewRef(obj);
    s->stack[s->nstack].owner = owner;
    s->nstack++;
    return 0;
}

/* One referent ``k`` of the object being entered (whose record is ``owner``): count,
 * size, label. 0 or -1. */
static int
look_at(Records *s, PyObject *k, Py_ssize_t owner, int traversed, int64_t visit,
        int64_t *objects)
{
    /* the reference count first, as the Python walk's getrefcount(k) */
    Py_ssize_t holders = Py_REFCNT(k) - OWN_REFS;
    PyTypeObject *kt = Py_TYPE(k);
    KindInfo *ki = kc_get(&s->cache, kt);
    /* a kind known here: what the walk stops at (a program object, a module's globals)
     * is never recorded, so this may come first */
    if (ki != NULL && stops_at(s, ki, k))
        return 0;
    /* remembered already? Never, for what only its holder found by tp_traverse holds:
     * a record holds its object, so Py_REFCNT would count one more */
    if (!traversed || ki == NULL || holders > 1) {
        Py_ssize_t idx = rec_find(s, k);
        if (idx >= 0) {
            Rec *r = &s->recs[idx];
            const Rec *o = &s->recs[owner];
            r->indeg++;
            if (r->visit == visit) /* twice in one holder: counted once too many */
                r->holders--;
            if (r->label != o->label || o->label == SHARED)
                return meet(s, idx, o->label, o->sharers);
            return 0;
        }
    }
    if (ki == NULL) {
        ki = kind_of(s, kt, k);
        if (ki == NULL)
            return -1;
        if (stops_at(s, ki, k))
            return 0;
    }
    ++*objects;
    long long size;
    if (ki->how == K_LEAF) {
        if (leaf_size(ki, k, &size) < 0)
            return -1;
    } else if (kind_size(ki, k, &size) < 0) {
        return -1;
    }
    int enter = ki->how >= K_PLAIN;
    if (holders <= 1) { /* the object entered is its one holder: its owner's */
        s->recs[owner].priv += size;
        if (!enter && ki->how == K_GEN) {
            int f = ask(s, s_frame_of, k);
            if (f < 0)
                return -1;
            enter = !f;
        }
        return enter ? push(s, k, owner) : 0;
    }
    const Rec *o = &s->recs[owner];
    Py_ssize_t idx = rec_add(s, k, o->label, o->sharers, 1, size, (int64_t)holders, 0, visit);
    if (idx < 0)
        return -1;
    if (!enter && ki->how == K_GEN) {
        int f = ask(s, s_frame_of, k);
        if (f < 0)
            return -1;
        enter = !f;
    }
    return enter ? push(s, k, idx) : 0;
}

/* census.descend: the first walk below record ``start`` */
static int
descend(Records *s, Py_ssize_t start)
{
    int64_t visit = s->visit, objects = 0;
    int rc = push(s, s->recs[start].obj, start);
    while (rc == 0 && s->nstack > 0) {
        Item it = s->stack[--s->nstack]; /* our reference to it.obj, now */
        PyObject *o = it.obj;
        KindInfo *ki = known_kind(s, Py_TYPE(o));
        int traversed, got = -1;
        if (ki == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, (PyObject *)Py_TYPE(o)); /* kinds[type(o)] */
        } else {
            got = collect(s, &s->kids, o, ki, &traversed);
        }
        if (got < 0)
            rc = -1;
        if (got > 0) {
            if (ki->values_apart) {
                int has_dict = 0;
                for (Py_ssize_t i = 0; i < s->kids.n; i++) {
                    if (Py_IS_TYPE(s->kids.items[i], &PyDict_Type)) {
                        has_dict = 1;
                        break;
                    }
                }
                /* 3.11/3.12 keep an instance's attribute values in an array of their own
                 * until its __dict__ is asked for: the values and the class */
                if (!has_dict)
                    s->recs[it.owner].priv += (8 * (int64_t)s->kids.n + 15) & ~7LL;
            }
            visit++;
            for (Py_ssize_t i = 0; rc == 0 && i < s->kids.n; i++) {
                PyObject *k = s->kids.items[i];
                Py_INCREF(k); /* the Python walk's loop variable (one of OWN_REFS) */
                rc = look_at(s, k, it.owner, traversed, visit, &objects);
                Py_DECREF(k);
            }
        }
        buf_clear(&s->kids);
        Py_DECREF(o);
    }
    while (s->nstack > 0) { /* after an error */
        Item it = s->stack[--s->nstack];
        Py_DECREF(it.obj);
    }
    if (rc == 0) { /* as in Python: an error leaves visit and objects as they were */
        s->visit = visit;
        s->objects += objects;
    }
    return rc;
}
/* ---- the Records type ---------------------------------------------------------------- */

static void
records_release(Records *s)
{
    for (Py_ssize_t i = 0; i < s->n; i++)
        Py_CLEAR(s->recs[i].obj);
    region_free(s->recs, (size_t)s->cap * sizeof(Rec));
    s->recs = NULL;
    s->n = s->cap = 0;
    region_free(s->pool, (size_t)s->cappool * sizeof(int32_t));
    s->pool = NULL;
    s->npool = s->cappool = 0;
    s->last_list = NO_SHARERS;
    while (s->nstack > 0)
        Py_DECREF(s->stack[--s->nstack].obj);
    region_free(s->stack, (size_t)s->capstack * sizeof(Item));
    s->stack = NULL;
    s->capstack = 0;
    buf_free(&s->kids);
    buf_free(&s->sstack);
    buf_free(&s->skids);
    pm_free(&s->map);
    pm_free(&s->stop);
    kc_free(&s->cache);
    Py_CLEAR(s->census);
    Py_CLEAR(s->kinds);
}

static int
records_traverse(Records *s, visitproc visit, void *arg)
{
    Py_VISIT(s->census);
    Py_VISIT(s->kinds);
    for (Py_ssize_t i = 0; i < s->n; i++)
        Py_VISIT(s->recs[i].obj);
    return 0;
}

static int
records_clear(Records *s)
{
    records_release(s);
    return 0;
}

static void
records_dealloc(Records *s)
{
    PyObject_GC_UnTrack(s);
    records_release(s);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

/* An address from a Python int (an id); NULL, without an exception, for what no object
 * can have. */
static void *
address_of(PyObject *v)
{
    if (!PyLong_CheckExact(v))
        return NULL;
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    if (overflow || x <= 0 || (unsigned long long)x > (unsigned long long)UINTPTR_MAX)
        return NULL;
    return (void *)(uintptr_t)x;
}

static PyObject *
records_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *census;
    static char *kwlist[] = {"census", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Records", kwlist, &census))
        return NULL;
    Records *s = (Records *)type->tp_alloc(type, 0);
    if (s == NULL)
        return NULL;
    s->last_list = NO_SHARERS;
    s->census = Py_NewRef(census);
    s->kinds = PyObject_GetAttr(census, s_kinds);
    PyObject *stop = s->kinds == NULL ? NULL : PyObject_GetAttr(census, s_stop);
    if (stop == NULL)
        goto fail;
    if (!PyDict_Check(s->kinds) || !PyAnySet_Check(stop)) {
        PyErr_SetString(PyExc_TypeError, "census.kinds is a dict, census.stop a set");
        goto fail;
    }
    PyObject *it = PyObject_GetIter(stop), *item;
    if (it == NULL)
        goto fail;
    while ((item = PyIter_Next(it)) != NULL) {
        void *p = address_of(item);
        Py_DECREF(item);
        if (p != NULL && pm_put(&s->stop, p, 1) < 0)
            break;
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        goto fail;
    Py_DECREF(stop);
    return (PyObject *)s;
fail:
    Py_XDECREF(stop);
    Py_DECREF(s);
    return NULL;
}

static int
as_root(PyObject *v, int32_t *out)
{
    long r = PyLong_AsLong(v);
    if (r == -1 && PyErr_Occurred())
        return -1;
    if (r < 0 || r > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "a root's index is from 0 to 2**31-1");
        return -1;
    }
    *out = (int32_t)r;
    return 0;
}

/* root(r, obj, holders, rootrefs): census.walk_root after its kind and stop checks */
static PyObject *
records_root(Records *s, PyObject *const *args, Py_ssize_t nargs)
{
    int32_t r;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "root(r, obj, holders, rootrefs)");
        return NULL;
    }
    long long holders = PyLong_AsLongLong(args[2]);
    long long rootrefs = holders == -1 && PyErr_Occurred() ? -1 : PyLong_AsLongLong(args[3]);
    if (PyErr_Occurred() || as_root(args[0], &r) < 0)
        return NULL;
    PyObject *obj = args[1];
    if (s->census == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "these records were released");
        return NULL;
    }
    Py_ssize_t idx = rec_find(s, obj);
    if (idx >= 0) {
        s->recs[idx].rootrefs += rootrefs;
        if (meet(s, idx, r, NO_SHARERS) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    KindInfo *ki = kind_of(s, Py_TYPE(obj), obj);
    long long size;
    if (ki == NULL || kind_size(ki, obj, &size) < 0)
        return NULL;
    idx = rec_add(s, obj, r, NO_SHARERS, 0, size, holders, rootrefs, 0);
    if (idx < 0)
        return NULL;
    s->objects++;
    if (ki->how == K_GEN) {
        int f = ask(s, s_frame_of, obj);
        if (f < 0)
            return NULL;
        if (f)
            Py_RETURN_NONE; /* the generator is not walked: its locals are roots */
    }
    if (descend(s, idx) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
records_has(Records *s, PyObject *addr)
{
    void *p = address_of(addr);
    return PyBool_FromLong(p != NULL && rec_find(s, p) >= 0);
}

/* ``seen`` (address -> references from running frames) as a map; -1 on an error */
static int
seen_map(PyObject *seen, PtrMap *m)
{
    if (!PyDict_Check(seen)) {
        PyErr_SetString(PyExc_TypeError, "seen is a dict");
        return -1;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(seen, &pos, &key, &value)) {
        void *p = address_of(key);
        long n = PyLong_AsLong(value);
        if (n == -1 && PyErr_Occurred())
            return -1;
        if (p != NULL && n > 0 && pm_put(m, p, (Py_ssize_t)n) < 0)
            return -1;
    }
    return 0;
}

static int
unexplained_at(Records *s, PtrMap *seen, Py_ssize_t i)
{
    const Rec *r = &s->recs[i];
    Py_ssize_t n = pm_get(seen, r->obj);
    return r->label != ELSEWHERE
           && r->holders > r->indeg + r->rootrefs + r->running + (n > 0 ? n : 0);
}

/* held(objs, counts): each of ``objs`` (live objects a running frame's slots hold,
 * ``counts[i]`` slots for ``objs[i]``) holds its referents (tp_traverse, as
 * gc.get_referents) that many more times: what census.held_by_running adds to ``seen``,
 * kept with the records instead (a frame's iterator over a million recorded objects
 * cost 0.2 s in Python, and a dict of a million ints besides) */
static PyObject *
records_held(Records *s, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyList_CheckExact(args[1])
        || PyList_GET_SIZE(args[0]) != PyList_GET_SIZE(args[1])) {
        PyErr_SetString(PyExc_TypeError, "held(objs: list, counts: list of the same length)");
        return NULL;
    }
    PyObject *objs = args[0], *counts = args[1];
    Buf kids = {NULL, 0, 0};
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(objs); i++) {
        long long n = PyLong_AsLongLong(PyList_GET_ITEM(counts, i));
        if (n == -1 && PyErr_Occurred()) {
            buf_free(&kids);
            return NULL;
        }
        PyObject *o = Py_NewRef(PyList_GET_ITEM(objs, i));
        traverseproc trav = Py_TYPE(o)->tp_traverse;
        if (PyObject_IS_GC(o) && trav != NULL && trav(o, buf_visit, &kids) != 0) {
            Py_DECREF(o);
            if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
                buf_free(&kids);
                return NULL;
            }
            PyErr_Clear();  /* census.py: ``except Exception: continue`` */
            buf_clear(&kids);
            continue;
        }
        for (Py_ssize_t j = 0; j < kids.n; j++) {
            Py_ssize_t idx = rec_find(s, kids.items[j]);
            if (idx >= 0)
                s->recs[idx].running += n;
        }
        buf_clear(&kids);
        Py_DECREF(o);
    }
    buf_free(&kids);
    Py_RETURN_NONE;
}

/* unexplained(seen): the largest _PRIVATE of a record with more holders than the walk
 * and running frames (``seen``) explain, or -1 */
static PyObject *
records_unexplained(Records *s, PyObject *seen)
{
    PtrMap m = {NULL, NULL, 0, 0, 0};
    if (seen_map(seen, &m) < 0) {
        pm_free(&m);
        return NULL;
    }
    long long most = -1;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        if (unexplained_at(s, &m, i) && s->recs[i].priv > most)
            most = s->recs[i].priv;
    }
    pm_free(&m);
    return PyLong_FromLongLong(most);
}

/* settle(seen): every record still unexplained is held by something the walk does not
 * see: ELSEWHERE, spread below it (run()'s last pass) */
static PyObject *
records_settle(Records *s, PyObject *seen)
{
    PtrMap m = {NULL, NULL, 0, 0, 0};
    Py_ssize_t *tops = NULL, ntops = 0, captops = 0;
    PyObject *result = NULL;
    if (seen_map(seen, &m) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        if (unexplained_at(s, &m, i)) {
            RESERVE(tops, ntops, captops, ntops + 1, goto done);
            s->recs[i].label = ELSEWHERE;
            s->recs[i].sharers = NO_SHARERS;
            tops[ntops++] = i;
        }
    }
    if (spread_all(s, tops, ntops) == 0)
        result = Py_NewRef(Py_None);
done:
    pm_free(&m);
    region_free(tops, (size_t)captops * sizeof(Py_ssize_t));
    return result;
}

/* totals(n): (retained per root, shared per root, named bytes, shared bytes) */
static PyObject *
records_totals(Records *s, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "a count of roots");
        return NULL;
    }
    long long *ret = PyMem_Calloc((size_t)n + 1, sizeof(long long));
    long long *sh = PyMem_Calloc((size_t)n + 1, sizeof(long long));
    long long named = 0, shared_total = 0;
    PyObject *out = NULL, *lr = NULL, *ls = NULL;
    if (ret == NULL || sh == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < s->n; i++) {
        const Rec *r = &s->recs[i];
        if (r->label >= 0) {
            if (r->label >= n) {
                PyErr_SetString(PyExc_IndexError, "a record's root is not counted");
                goto done;
            }
            ret[r->label] += r->priv;
            named += r->priv;
        } else if (r->label == SHARED) {
            for (int32_t j = 0; j < sharers_len(s, r->sharers); j++) {
                int32_t root = s->pool[r->sharers + 1 + j];
                if (root >= n) {
                    PyErr_SetString(PyExc_IndexError, "a record's root is not counted");
                    goto done;
                }
                sh[root] += r->priv;
            }
            named += r->priv;
            shared_total += r->priv;
        }
    }
    lr = PyList_New(n);
    ls = lr == NULL ? NULL : PyList_New(n);
    if (ls == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = PyLong_FromLongLong(ret[i]), *b = PyLong_FromLongLong(sh[i]);
        if (a == NULL || b == NULL) {
            Py_XDECREF(a);
            Py_XDECREF(b);
            goto done;
        }
        PyList_SET_ITEM(lr, i, a);
        PyList_SET_ITEM(ls, i, b);
    }
    out = Py_BuildValue("(OOLL)", lr, ls, named, shared_total);
done:
    Py_XDECREF(lr);
    Py_XDECREF(ls);
    PyMem_Free(ret);
    PyMem_Free(sh);
    return out;
}

/* records(): every record as census.py lays one out (a list per record, _OBJ.._VISIT),
 * in the order made: for tests and benchmarks, which compare them with the Python walk's */
static PyObject *
records_records(Records *s, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyList_New(s->n);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        const Rec *r = &s->recs[i];
        PyObject *sharers;
        if (r->sharers == NO_SHARERS) {
            sharers = Py_NewRef(Py_None);
        } else {
            int32_t n = sharers_len(s, r->sharers);
            sharers = PyList_New(n);
            for (int32_t j = 0; sharers != NULL && j < n; j++) {
                PyObject *v = PyLong_FromLong(s->pool[r->sharers + 1 + j]);
                if (v == NULL)
                    Py_CLEAR(sharers);
                else
                    PyList_SET_ITEM(sharers, j, v);
            }
        }
        PyObject *rec = sharers == NULL ? NULL
                                        : Py_BuildValue("[OiLLLLNL]", r->obj, (int)r->label,
                                                        (long long)r->indeg, (long long)r->priv,
                                                        (long long)r->holders,
                                                        (long long)r->rootrefs, sharers,
                                                        (long long)r->visit);
        if (rec == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, rec);
    }
    return out;
}

static PyObject *
records_do_release(Records *s, PyObject *Py_UNUSED(ignored))
{
    records_release(s);
    Py_RETURN_NONE;
}

static Py_ssize_t
records_len(Records *s)
{
    return s->n;
}

static PyObject *
records_get_objects(Records *s, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(s->objects);
}

static PyObject *
records_get_visit(Records *s, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(s->visit);
}

static PyMethodDef records_methods[] = {
    {"root", (PyCFunction)(void (*)(void))records_root, METH_FASTCALL,
     "root(r, obj, holders, rootrefs)\n--\n\nRoot ``r`` names ``obj``: its record (or a "
     "meet), then the first walk below it (census._Census.walk_root)."},
    {"has", (PyCFunction)records_has, METH_O, "has(address)\n--\n\nIs that object recorded?"},
    {"held", (PyCFunction)(void (*)(void))records_held, METH_FASTCALL,
     "held(objs, counts)\n--\n\nEach of ``objs`` is held by ``counts[i]`` slots of running "
     "frames: what it references is held that many more times (unexplained and settle "
     "count it)."},
    {"unexplained", (PyCFunction)records_unexplained, METH_O,
     "unexplained(seen)\n--\n\nThe largest own bytes of a record more holders hold than "
     "the walk and ``seen`` (address -> references from running frames) explain; -1."},
    {"settle", (PyCFunction)records_settle, METH_O,
     "settle(seen)\n--\n\nWhat is still unexplained is held elsewhere: labelled so, and "
     "spread below."},
    {"totals", (PyCFunction)records_totals, METH_O,
     "totals(n)\n--\n\n(retained per root, shared per root, named bytes, shared bytes)."},
    {"records", (PyCFunction)records_records, METH_NOARGS,
     "records()\n--\n\nEvery record, laid out as census.py's (for tests)."},
    {"release", (PyCFunction)records_do_release, METH_NOARGS,
     "release()\n--\n\nDrop every reference and give the memory back."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef records_getset[] = {
    {"objects", (getter)records_get_objects, NULL, "objects counted by the walks", NULL},
    {"visit", (getter)records_get_visit, NULL, "holders entered so far", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods records_as_sequence = {
    .sq_length = (lenfunc)records_len,
};

static PyTypeObject RecordsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "memscope._censusc.Records",
    .tp_basicsize = sizeof(Records),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)records_traverse,
    .tp_clear = (inquiry)records_clear,
    .tp_doc = "Records(census): one census's records and walk, in C (see the module).",
    .tp_new = records_new,
    .tp_dealloc = (destructor)records_dealloc,
    .tp_methods = records_methods,
    .tp_getset = records_getset,
    .tp_as_sequence = &records_as_sequence,
};

/* ---- the collector's objects, filtered without running bytecode ----------------------- */

/* tracked(types, ids): the objects gc.get_objects() lists whose type is in the set of
 * type ids ``types`` or whose id is in the set ``ids``. That list holds a reference to
 * every tracked object, a tuple another thread is still building included (its
 * _PyTuple_Resize then fails: SystemError in the program). Here it lives inside one C
 * call that runs no bytecode, so no other thread can run while it exists (the GIL is
 * only handed over at an eval-breaker check or a blocking call). */
static PyObject *
censusc_tracked(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyAnySet_Check(args[0]) || !PyAnySet_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "tracked(types: frozenset, ids: frozenset)");
        return NULL;
    }
    PyObject *types = args[0], *ids = args[1];
    int by_type = PySet_GET_SIZE(types) > 0;
    if (!by_type && PySet_GET_SIZE(ids) == 0)
        return PyList_New(0);
    /* the wanted addresses as a map: each object is then looked up without an int made
     * for it (1.5 million objects: 40 ms a census, most of it those ints). Members that
     * are no address (no object has it) are left out: they match nothing either way */
    PtrMap want = {NULL, NULL, 0, 0, 0};
    PyObject *it = PyObject_GetIter(by_type ? types : ids), *key;
    if (it == NULL)
        return NULL;
    while ((key = PyIter_Next(it)) != NULL) {
        void *p = address_of(key);
        Py_DECREF(key);
        if (p != NULL && pm_put(&want, p, 1) < 0) {
            Py_DECREF(it);
            pm_free(&want);
            return NULL;  /* (MemoryError set) */
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        pm_free(&want);
        return NULL;
    }
    /* made first: a container's allocation can start a collection (3.10, 3.11), whose
     * finalizers run bytecode; appends only grow its item array */
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        pm_free(&want);
        return NULL;
    }
    PyObject *gc = PyImport_ImportModule("gc");
    if (gc == NULL) {
        pm_free(&want);
        Py_DECREF(out);
        return NULL;
    }
    PyObject *all = PyObject_CallMethod(gc, "get_objects", NULL);
    Py_DECREF(gc);
    if (all == NULL) {
        pm_free(&want);
        Py_DECREF(out);
        return NULL;
    }
    if (!PyList_CheckExact(all)) {
        PyErr_SetString(PyExc_TypeError, "gc.get_objects() did not return a list");
        goto fail;
    }
    Py_ssize_t n = PyList_GET_SIZE(all);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PyList_GET_ITEM(all, i);
        if (pm_get(&want, by_type ? (void *)Py_TYPE(o) : (void *)o) >= 0
            && PyList_Append(out, o) < 0)
            goto fail;
    }
    pm_free(&want);
    Py_DECREF(all);
    return out;
fail:
    pm_free(&want);
    Py_DECREF(all);
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"tracked", (PyCFunction)(void (*)(void))censusc_tracked, METH_FASTCALL,
     "tracked(types, ids)\n--\n\nThe collector's objects whose type's id is in types "
     "(if not empty), else whose id is in ids; no bytecode runs while the list of every "
     "tracked object exists."},
    {NULL, NULL, 0, NULL},
};

/* ---- the module ---------------------------------------------------------------------- */

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "memscope._censusc",
    "The census's records and walk in C (see memscope.census).", -1, module_methods, NULL,
    NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__censusc(void)
{
#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(s_kinds, "kinds");
    INTERN(s_stop, "stop");
    INTERN(s_kind, "kind");
    INTERN(s_frame_of, "frame_of");
    INTERN(s_instrumented, "instrumented");
    INTERN(s_children, "children");
    INTERN(s_how, "how");
    INTERN(s_is_dict, "is_dict");
    INTERN(s_values_apart, "values_apart");
    INTERN(s_sizeof, "sizeof");
    INTERN(s_extra, "extra");
    INTERN(s_size, "size");
#undef INTERN
    if (PyType_Ready(&RecordsType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    /* what this module was written against: a test compares them with memscope.census */
    PyObject *kinds = Py_BuildValue("(iiiiiii)", K_STOP, K_GEN, K_LEAF, K_SIZED, K_PLAIN,
                                    K_DECLARED, K_NUMPY);
    if (kinds == NULL || PyModule_AddObjectRef(m, "KINDS", kinds) < 0
        || PyModule_AddObjectRef(m, "Records", (PyObject *)&RecordsType) < 0
        || PyModule_AddIntConstant(m, "SHARED", SHARED) < 0
        || PyModule_AddIntConstant(m, "ELSEWHERE", ELSEWHERE) < 0
        || PyModule_AddIntConstant(m, "MAX_SHARERS", MAX_SHARERS) < 0
        || PyModule_AddIntConstant(m, "OWN_REFS", OWN_REFS) < 0) {
        Py_XDECREF(kinds);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(kinds);
    return m;
}

/* memscope._censusc: the census walk's hot loop (memscope.census._Census.descend) in C.
 *
 * descend(census, start, start_rec) does what the pure-Python _Census.descend does, field
 * for field: the same records (census.rec, id -> list laid out as _OBJ.._VISIT), the same
 * census.visit and census.objects, the same calls to census.meet(rec, label, sharers),
 * census.kind(tp, sample) for a type it has not seen, census.frame_of(k) for generators
 * and census.children(o, kd) for kinds other than _PLAIN and _GEN, in the same order.
 * tests/test_census_accel.py walks random heaps with both and compares every field.
 *
 * What it does itself, without calling back into Python:
 * - the referents of _PLAIN and _GEN objects: the type's tp_traverse with a callback that
 *   collects them, as gc.get_referents does (without its audit event); a dict's keys go
 *   first when the traversal gave as many referents as len(dict) (a str-keyed dict:
 *   values only), as census.children does;
 * - sizes: sizeof(o) + extra (the _Kind's C __sizeof__ and constant), rounded up to 8,
 *   as _Kind.size does when the kind has a C __sizeof__ (kd.size(o) is called otherwise);
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
 * code holds mirrors a reference the Python walk holds at the same moment: the stack
 * (Python: its (object, owner) tuples), the object being entered (Python: ``o``) and the
 * kids buffer (Python: ``kids``), so census.meet -> spread, which reads reference counts,
 * sees the same counts from either walk.
 *
 * What this call already knows it keeps in C, and writes into the records before any
 * Python code runs (meet, kind, frame_of, children, kd.size) and when it returns, so
 * whatever runs sees the records as the Python walk would have left them:
 * - the records it met or made (address -> record): a record met again costs no int for
 *   its id and no dict look-up; their _INDEG and _HOLDERS changes, and the bytes for the
 *   current owner's _PRIVATE, are added up here;
 * - the kinds of the types seen (from census.kinds, or made by census.kind);
 * - census.stop as addresses, once enough dicts have been checked against it.
 * A recorded object is never a single-holder one: its record holds it, and so do the
 * kids buffer and this loop, and (for referents found by tp_traverse) its holder. So a
 * referent found by tp_traverse with holders <= 1 is known not to be in census.rec
 * without looking: the common case, the strings of a list, the values of a dict, costs
 * a reference count, a type check and a size. Objects the walk stops at (a _STOP kind,
 * a module's globals) are never recorded either, so for a kind already known they are
 * passed over before the look-up, which the Python walk makes first.
 *
 * Errors. An exception from census.children (or from len() of a dict) skips the object,
 * as the Python walk's ``except Exception: continue`` does; running out of memory in this
 * module's own buffers returns NULL (MemoryError). An exception from the callbacks the
 * Python walk does not guard (kind, meet, frame_of, a leaf's __sizeof__) propagates, as it
 * does there, with census.visit and census.objects not updated.
 *
 * The GIL is held throughout; the only Python code run is what the Python walk runs.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* the record layout and the kinds: memscope/census.py (_OBJ.._VISIT, _STOP.._NUMPY) */
enum { F_OBJ, F_LABEL, F_INDEG, F_PRIVATE, F_HOLDERS, F_ROOTREFS, F_SHARERS, F_VISIT, F_N };
enum { K_STOP, K_GEN, K_LEAF, K_SIZED, K_PLAIN, K_DECLARED, K_NUMPY };
#define SHARED (-1)
#define OWN_REFS 2 /* references to k this code holds while it looks at k */

static PyObject *s_kinds, *s_rec, *s_stop, *s_visit, *s_objects, *s_meet, *s_kind,
    *s_frame_of, *s_children, *s_how, *s_is_dict, *s_values_apart, *s_sizeof, *s_extra,
    *s_size;

/* ---- a growable array of strong references -------------------------------------- */

typedef struct {
    PyObject **items;
    Py_ssize_t n, cap;
} Buf;

static int
buf_reserve(Buf *b, Py_ssize_t need)
{
    if (need <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    PyObject **items = PyMem_Realloc(b->items, (size_t)cap * sizeof(PyObject *));
    if (items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->items = items;
    b->cap = cap;
    return 0;
}

static int
buf_visit(PyObject *o, void *arg)
{
    Buf *b = (Buf *)arg;
    if (b->n == b->cap && buf_reserve(b, b->n + 1) < 0)
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
    PyMem_Free(b->items);
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

/* An open-addressing map from an address to an index (>= 0), for one call. */
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

static int
pm_put(PtrMap *m, void *p, Py_ssize_t v)
{
    if ((m->used + 1) * 2 > m->cap) {
        PtrMap big = {NULL, NULL, m->cap ? m->cap * 2 : 64, 0, 0};
        int bits = 0;
        while (((Py_ssize_t)1 << bits) < big.cap)
            bits++;
        big.shift = 64 - bits;
        big.keys = PyMem_Calloc((size_t)big.cap, sizeof(void *));
        big.vals = PyMem_Malloc((size_t)big.cap * sizeof(Py_ssize_t));
        if (big.keys == NULL || big.vals == NULL) {
            PyMem_Free(big.keys);
            PyMem_Free(big.vals);
            PyErr_NoMemory();
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
        PyMem_Free(m->keys);
        PyMem_Free(m->vals);
        *m = big;
    }
    size_t i = pm_slot(m, p);
    if (m->keys[i] == NULL)
        m->used++;
    m->keys[i] = p;
    m->vals[i] = v;
    return 0;
}

static void
pm_free(PtrMap *m)
{
    PyMem_Free(m->keys);
    PyMem_Free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- the records ------------------------------------------------------------------- */

static int
check_rec(PyObject *rec)
{
    if (!PyList_Check(rec) || PyList_GET_SIZE(rec) < F_N) {
        PyErr_SetString(PyExc_TypeError, "a census record is a list of 8 fields");
        return -1;
    }
    return 0;
}

/* rec[field] += delta */
static int
rec_add(PyObject *rec, int field, long long delta)
{
    PyObject *d = PyLong_FromLongLong(delta);
    if (d == NULL)
        return -1;
    PyObject *v = PyNumber_Add(PyList_GET_ITEM(rec, field), d);
    Py_DECREF(d);
    if (v == NULL)
        return -1;
    PyList_SetItem(rec, field, v); /* steals v */
    return 0;
}

/* obj == v, for an int field (1, 0, or -1 with an exception) */
static int
eq_long(PyObject *obj, long long v)
{
    if (PyLong_CheckExact(obj)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (x == -1 && PyErr_Occurred())
            return -1;
        return !overflow && x == v;
    }
    PyObject *w = PyLong_FromLongLong(v);
    if (w == NULL)
        return -1;
    int r = PyObject_RichCompareBool(obj, w, Py_EQ);
    Py_DECREF(w);
    return r;
}

/* A record this call has met or made. Its _INDEG and _HOLDERS changes are kept here and
 * written to the record before any Python code runs and at the end (sync_recs), so whatever
 * runs sees the records as the Python walk would have left them. */
typedef struct {
    PyObject *rec; /* strong */
    long long visit; /* rec[_VISIT] (set once, when the record is made) */
    long long dindeg, dholders;
    int visit_ok; /* rec[_VISIT] was an int that fits */
    int dirty;
} Entry;

/* ---- the walk ---------------------------------------------------------------------- */

typedef struct {
    PyObject *obj, *owner; /* strong */
} Item;

typedef struct {
    PyObject *census, *kinds, *recs, *stop;
    KindCache cache;
    Item *stack;
    Py_ssize_t nstack, capstack;
    Buf kids;
    PyObject *owner;   /* the record owning the object entered (strong) */
    long long pending; /* bytes for owner[_PRIVATE] not yet added */
    PtrMap recmap;     /* object -> index in entries */
    Entry *entries;
    Py_ssize_t nentries, capentries;
    Py_ssize_t *dirty;
    Py_ssize_t ndirty, capdirty;
    PtrMap stopmap;    /* census.stop as addresses, once it pays (stop_state 1) */
    int stop_state;    /* 0: PySet_Contains (stop_checks so far), 1: stopmap, 2: never map */
    Py_ssize_t stop_checks;
} Walk;

/* Room for one more item in a growable array ``arr`` of ``n`` items and ``cap`` slots:
 * doubled (``first`` slots the first time); on no memory, MemoryError and ``fail``. */
#define GROW(arr, n, cap, first, fail)                                              \
    do {                                                                            \
        if ((n) == (cap)) {                                                         \
            Py_ssize_t cap_ = (cap) ? (cap) * 2 : (first);                          \
            void *p_ = PyMem_Realloc((arr), (size_t)cap_ * sizeof(*(arr)));         \
            if (p_ == NULL) {                                                       \
                PyErr_NoMemory();                                                   \
                fail;                                                               \
            }                                                                       \
            (arr) = p_;                                                             \
            (cap) = cap_;                                                           \
        }                                                                           \
    } while (0)

static int
push(Walk *w, PyObject *obj, PyObject *owner)
{
    GROW(w->stack, w->nstack, w->capstack, 256, return -1);
    Py_INCREF(obj);
    Py_INCREF(owner);
    w->stack[w->nstack].obj = obj;
    w->stack[w->nstack].owner = owner;
    w->nstack++;
    return 0;
}

static Entry *
entry_add(Walk *w, PyObject *obj, PyObject *rec)
{
    GROW(w->entries, w->nentries, w->capentries, 64, return NULL);
    if (pm_put(&w->recmap, obj, w->nentries) < 0)
        return NULL;
    Entry *e = &w->entries[w->nentries++];
    memset(e, 0, sizeof *e);
    Py_INCREF(rec);
    e->rec = rec;
    PyObject *v = PyList_GET_ITEM(rec, F_VISIT);
    if (PyLong_CheckExact(v)) {
        int overflow;
        e->visit = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (e->visit == -1 && PyErr_Occurred())
            PyErr_Clear();
        else
            e->visit_ok = !overflow;
    }
    return e;
}

/* Write what is kept here into the records: owner[_PRIVATE], and every record's
 * _INDEG and _HOLDERS. */
static int
sync_recs(Walk *w)
{
    if (w->pending != 0 && w->owner != NULL) {
        long long p = w->pending;
        w->pending = 0;
        if (rec_add(w->owner, F_PRIVATE, p) < 0)
            return -1;
    }
    while (w->ndirty > 0) {
        Entry *e = &w->entries[w->dirty[w->ndirty - 1]];
        if (e->dindeg != 0) {
            long long d = e->dindeg;
            e->dindeg = 0;
            if (rec_add(e->rec, F_INDEG, d) < 0)
                return -1;
        }
        if (e->dholders != 0) {
            long long d = e->dholders;
            e->dholders = 0;
            if (rec_add(e->rec, F_HOLDERS, d) < 0)
                return -1;
        }
        e->dirty = 0;
        w->ndirty--;
    }
    return 0;
}

/* sync with an exception set (an error path): the exception stays as it was */
static void
sync_keeping_error(Walk *w)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (sync_recs(w) < 0)
        PyErr_Clear();
    PyErr_Restore(type, value, tb);
}

/* The kind of type ``tp`` as census.kinds has it (NULL without an exception: none yet). */
static KindInfo *
known_kind(Walk *w, PyTypeObject *tp)
{
    KindInfo *ki = kc_get(&w->cache, tp);
    if (ki != NULL)
        return ki;
    PyObject *kind = PyDict_GetItemWithError(w->kinds, (PyObject *)tp);
    if (kind == NULL)
        return NULL;
    Py_INCREF(kind);
    ki = kc_put(&w->cache, tp, kind);
    Py_DECREF(kind);
    return ki;
}

/* census.frame_of(k): 1, 0 or -1 */
static int
frame_of(Walk *w, PyObject *k)
{
    if (sync_recs(w) < 0)
        return -1;
    PyObject *r = PyObject_CallMethodOneArg(w->census, s_frame_of, k);
    if (r == NULL)
        return -1;
    int t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t;
}

/* ``id(k) in census.stop`` (1, 0, -1). Each check makes an int and looks it up, until
 * there have been enough of them in this call to pay for copying the set's addresses. */
static int
in_stop(Walk *w, PyObject *k)
{
    if (w->stop_state == 0 && ++w->stop_checks > 64) {
        w->stop_state = 2;
        PtrMap m = {NULL, NULL, 0, 0, 0};
        PyObject *it = PyObject_GetIter(w->stop), *item;
        if (it == NULL)
            return -1;
        int ok = 1;
        /* only plain ints can be ids; anything else and the set is asked as it is */
        while (ok && (item = PyIter_Next(it)) != NULL) {
            int overflow = 0;
            long long v = PyLong_CheckExact(item) ? PyLong_AsLongLongAndOverflow(item, &overflow)
                                                  : (ok = 0);
            Py_DECREF(item);
            if (v == -1 && PyErr_Occurred())
                break;
            if (!ok || overflow || v <= 0
                || (unsigned long long)v > (unsigned long long)UINTPTR_MAX)
                continue; /* no object's id */
            if (pm_put(&m, (void *)(uintptr_t)v, 1) < 0)
                break;
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) {
            pm_free(&m);
            return -1;
        }
        if (ok) {
            w->stopmap = m;
            w->stop_state = 1;
        } else {
            pm_free(&m);
        }
    }
    if (w->stop_state == 1)
        return pm_get(&w->stopmap, k) >= 0;
    PyObject *key = PyLong_FromVoidPtr(k);
    if (key == NULL)
        return -1;
    int r = PySet_Contains(w->stop, key);
    Py_DECREF(key);
    return r;
}

/* 1: the walk stops at ``k`` (a program object, a module's globals), 0: it goes on,
 * -1: an error. */
static int
stops_at(Walk *w, KindInfo *ki, PyObject *k)
{
    if (ki->how == K_STOP)
        return 1;
    return ki->is_dict ? in_stop(w, k) : 0;
}

/* Fill w->kids with what ``o`` references (children(o, kd)). 1: done, 0: skip ``o`` (an
 * Exception, as the Python walk's ``except Exception: continue``), -1: error. *traversed
 * is set when the referents came from tp_traverse (each one a reference ``o`` holds). */
static int
collect(Walk *w, PyObject *o, KindInfo *ki, int *traversed)
{
    Buf *kids = &w->kids;
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
    if (sync_recs(w) < 0)
        return -1;
    PyObject *r = PyObject_CallMethodObjArgs(w->census, s_children, o, ki->kind, NULL);
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
    if (buf_reserve(kids, n) < 0) {
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

/* k is remembered (its record, e): count the reference, merge labels. */
static int
met(Walk *w, Entry *e, long long visit)
{
    PyObject *rec = e->rec, *owner = w->owner;
    e->dindeg++;
    int same = e->visit_ok ? e->visit == visit : eq_long(PyList_GET_ITEM(rec, F_VISIT), visit);
    if (same < 0)
        return -1;
    if (same) /* twice in one holder: counted once too many */
        e->dholders--;
    if (!e->dirty) {
        GROW(w->dirty, w->ndirty, w->capdirty, 64, return -1);
        w->dirty[w->ndirty++] = e - w->entries;
        e->dirty = 1;
    }
    PyObject *label = PyList_GET_ITEM(owner, F_LABEL);
    PyObject *theirs = PyList_GET_ITEM(rec, F_LABEL);
    int differ = theirs == label ? 0 : PyObject_RichCompareBool(theirs, label, Py_NE);
    if (differ < 0)
        return -1;
    if (!differ) {
        differ = eq_long(label, SHARED);
        if (differ < 0)
            return -1;
    }
    if (!differ)
        return 0;
    if (sync_recs(w) < 0)
        return -1;
    label = PyList_GET_ITEM(owner, F_LABEL);
    PyObject *sharers = PyList_GET_ITEM(owner, F_SHARERS);
    Py_INCREF(label);
    Py_INCREF(sharers);
    Py_INCREF(rec);
    PyObject *r = PyObject_CallMethodObjArgs(w->census, s_meet, rec, label, sharers, NULL);
    Py_DECREF(rec);
    Py_DECREF(label);
    Py_DECREF(sharers);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* A new record: [k, owner's label, 1, size, holders, 0, owner's sharers copied, visit] */
static PyObject *
new_rec(PyObject *owner, PyObject *k, long long size, long long holders, long long visit)
{
    PyObject *rec = PyList_New(F_N);
    if (rec == NULL)
        return NULL;
    PyObject *sharers = PyList_GET_ITEM(owner, F_SHARERS);
    PyObject *fields[F_N];
    fields[F_OBJ] = Py_NewRef(k);
    fields[F_LABEL] = Py_NewRef(PyList_GET_ITEM(owner, F_LABEL));
    fields[F_INDEG] = PyLong_FromLong(1);
    fields[F_PRIVATE] = PyLong_FromLongLong(size);
    fields[F_HOLDERS] = PyLong_FromLongLong(holders);
    fields[F_ROOTREFS] = PyLong_FromLong(0);
    fields[F_SHARERS] = sharers == Py_None ? Py_NewRef(Py_None) : PySequence_List(sharers);
    fields[F_VISIT] = PyLong_FromLongLong(visit);
    int bad = 0;
    for (int i = 0; i < F_N; i++) {
        if (fields[i] == NULL)
            bad = 1;
        else
            PyList_SET_ITEM(rec, i, fields[i]);
    }
    if (bad) { /* the slots left NULL: list_dealloc skips them */
        Py_DECREF(rec);
        return NULL;
    }
    return rec;
}

/* Is k remembered? Its entry (found here, or in census.rec), or NULL (an exception if
 * PyErr_Occurred). */
static Entry *
find_rec(Walk *w, PyObject *k)
{
    Py_ssize_t i = pm_get(&w->recmap, k);
    if (i >= 0)
        return &w->entries[i];
    PyObject *key = PyLong_FromVoidPtr(k);
    if (key == NULL)
        return NULL;
    PyObject *rec = PyDict_GetItemWithError(w->recs, key);
    Py_DECREF(key);
    if (rec == NULL || rec == Py_None)
        return NULL;
    if (check_rec(rec) < 0)
        return NULL;
    return entry_add(w, k, rec);
}

/* One referent ``k`` of the object being entered: count, size, label. 0 or -1. */
static int
look_at(Walk *w, PyObject *k, int traversed, long long visit, long long *objects)
{
    /* the reference count first, as the Python walk's getrefcount(k) */
    Py_ssize_t holders = Py_REFCNT(k) - OWN_REFS;
    PyTypeObject *kt = Py_TYPE(k);
    KindInfo *ki = kc_get(&w->cache, kt);
    if (ki != NULL) {
        /* a kind known here: what the walk stops at (a program object, a module's
         * globals) is never recorded, so this may come first */
        int st = stops_at(w, ki, k);
        if (st != 0)
            return st < 0 ? -1 : 0;
    }
    /* remembered already? Never, for what only its holder found by tp_traverse holds:
     * a record holds its object, so Py_REFCNT would count one more */
    if (!traversed || ki == NULL || holders > 1) {
        Entry *e = find_rec(w, k);
        if (e != NULL)
            return met(w, e, visit);
        if (PyErr_Occurred())
            return -1;
    }
    if (ki == NULL) {
        ki = known_kind(w, kt);
        if (ki == NULL) {
            if (PyErr_Occurred() || sync_recs(w) < 0)
                return -1;
            PyObject *kind = PyObject_CallMethodObjArgs(w->census, s_kind, (PyObject *)kt, k,
                                                        NULL);
            if (kind == NULL)
                return -1;
            ki = kc_put(&w->cache, kt, kind);
            Py_DECREF(kind);
            if (ki == NULL)
                return -1;
        }
        int st = stops_at(w, ki, k);
        if (st != 0)
            return st < 0 ? -1 : 0;
    }
    ++*objects;
    long long size;
    if (ki->how == K_LEAF) {
        if (leaf_size(ki, k, &size) < 0)
            return -1;
    } else {
        if (ki->sizeof_ == NULL && sync_recs(w) < 0) /* kd.size(k): Python code */
            return -1;
        if (kind_size(ki, k, &size) < 0)
            return -1;
    }
    int enter = ki->how >= K_PLAIN;
    if (holders <= 1) { /* the object entered is its one holder: its owner's */
        w->pending += size;
        if (!enter && ki->how == K_GEN) {
            int f = frame_of(w, k);
            if (f < 0)
                return -1;
            enter = !f;
        }
        return enter ? push(w, k, w->owner) : 0;
    }
    PyObject *key = PyLong_FromVoidPtr(k);
    if (key == NULL)
        return -1;
    PyObject *rec = new_rec(w->owner, k, size, (long long)holders, visit);
    int rc = -1;
    if (rec == NULL || PyDict_SetItem(w->recs, key, rec) < 0 || entry_add(w, k, rec) == NULL)
        goto done;
    if (!enter && ki->how == K_GEN) {
        int f = frame_of(w, k);
        if (f < 0)
            goto done;
        enter = !f;
    }
    rc = enter ? push(w, k, rec) : 0;
done:
    Py_DECREF(key);
    Py_XDECREF(rec);
    return rc;
}

static int
walk(Walk *w, long long *visit_io, long long *objects_io)
{
    long long visit = *visit_io, objects = 0;
    while (w->nstack > 0) {
        Item it = w->stack[--w->nstack]; /* our references to both, now */
        PyObject *o = it.obj;
        int rc = -1;
        if (it.owner == w->owner) {
            Py_DECREF(it.owner);
        } else {
            if (sync_recs(w) < 0) { /* owner[_PRIVATE] before another owner */
                Py_DECREF(o);
                Py_DECREF(it.owner);
                return -1;
            }
            Py_XSETREF(w->owner, it.owner);
        }
        KindInfo *ki = known_kind(w, Py_TYPE(o));
        if (ki == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, (PyObject *)Py_TYPE(o)); /* kinds[type(o)] */
            goto next;
        }
        int traversed;
        rc = collect(w, o, ki, &traversed);
        if (rc <= 0)
            goto next;
        if (ki->values_apart) {
            int has_dict = 0;
            for (Py_ssize_t i = 0; i < w->kids.n; i++) {
                if (Py_IS_TYPE(w->kids.items[i], &PyDict_Type)) {
                    has_dict = 1;
                    break;
                }
            }
            /* 3.11/3.12 keep an instance's attribute values in an array of their own until
             * its __dict__ is asked for: the values and the class */
            if (!has_dict)
                w->pending += (8 * (long long)w->kids.n + 15) & ~7LL;
        }
        visit++;
        rc = 0;
        for (Py_ssize_t i = 0; i < w->kids.n; i++) {
            PyObject *k = w->kids.items[i];
            Py_INCREF(k); /* the Python walk's loop variable (one of OWN_REFS) */
            rc = look_at(w, k, traversed, visit, &objects);
            Py_DECREF(k);
            if (rc < 0)
                break;
        }
    next:
        buf_clear(&w->kids);
        Py_DECREF(o);
        if (rc < 0)
            return -1;
    }
    *visit_io = visit;
    *objects_io = objects;
    return sync_recs(w);
}

static PyObject *
descend(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "descend(census, start, start_rec)");
        return NULL;
    }
    PyObject *census = args[0], *start = args[1], *start_rec = args[2];
    if (check_rec(start_rec) < 0)
        return NULL;
    Walk w;
    memset(&w, 0, sizeof w);
    w.census = census;
    PyObject *result = NULL;
    long long visit, objects = 0;
    w.kinds = PyObject_GetAttr(census, s_kinds);
    w.recs = w.kinds == NULL ? NULL : PyObject_GetAttr(census, s_rec);
    w.stop = w.recs == NULL ? NULL : PyObject_GetAttr(census, s_stop);
    if (w.stop == NULL || get_long_attr(census, s_visit, &visit) < 0)
        goto done;
    if (!PyDict_Check(w.kinds) || !PyDict_Check(w.recs) || !PyAnySet_Check(w.stop)) {
        PyErr_SetString(PyExc_TypeError, "census.kinds and census.rec are dicts, stop a set");
        goto done;
    }
    if (push(&w, start, start_rec) < 0)
        goto done;
    if (walk(&w, &visit, &objects) < 0) {
        sync_keeping_error(&w); /* what was counted before the error stays, as in Python */
        goto done;
    }
    PyObject *v = PyLong_FromLongLong(visit);
    if (v == NULL)
        goto done;
    int bad = PyObject_SetAttr(census, s_visit, v);
    Py_DECREF(v);
    if (bad < 0)
        goto done;
    PyObject *old = PyObject_GetAttr(census, s_objects);
    if (old == NULL)
        goto done;
    PyObject *add = PyLong_FromLongLong(objects);
    PyObject *sum = add == NULL ? NULL : PyNumber_Add(old, add);
    Py_DECREF(old);
    Py_XDECREF(add);
    if (sum == NULL)
        goto done;
    bad = PyObject_SetAttr(census, s_objects, sum);
    Py_DECREF(sum);
    if (bad < 0)
        goto done;
    result = Py_NewRef(Py_None);
done:
    while (w.nstack > 0) {
        Item it = w.stack[--w.nstack];
        Py_DECREF(it.obj);
        Py_DECREF(it.owner);
    }
    PyMem_Free(w.stack);
    buf_free(&w.kids);
    kc_free(&w.cache);
    for (Py_ssize_t i = 0; i < w.nentries; i++)
        Py_DECREF(w.entries[i].rec);
    PyMem_Free(w.entries);
    PyMem_Free(w.dirty);
    pm_free(&w.recmap);
    pm_free(&w.stopmap);
    Py_XDECREF(w.owner);
    Py_XDECREF(w.kinds);
    Py_XDECREF(w.recs);
    Py_XDECREF(w.stop);
    return result;
}

static PyMethodDef methods[] = {
    {"descend", (PyCFunction)(void (*)(void))descend, METH_FASTCALL,
     "descend(census, start, start_rec)\n--\n\n"
     "memscope.census._Census.descend in C: the first walk below a newly remembered "
     "object (count, size, label)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "memscope._censusc",
    "The census walk's hot loop in C (see memscope.census).", -1, methods, NULL, NULL, NULL,
    NULL,
};

static int
add_object(PyObject *m, const char *name, PyObject *value) /* steals value */
{
    if (value == NULL)
        return -1;
    int r = PyModule_AddObjectRef(m, name, value);
    Py_DECREF(value);
    return r;
}

PyMODINIT_FUNC
PyInit__censusc(void)
{
#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(s_kinds, "kinds");
    INTERN(s_rec, "rec");
    INTERN(s_stop, "stop");
    INTERN(s_visit, "visit");
    INTERN(s_objects, "objects");
    INTERN(s_meet, "meet");
    INTERN(s_kind, "kind");
    INTERN(s_frame_of, "frame_of");
    INTERN(s_children, "children");
    INTERN(s_how, "how");
    INTERN(s_is_dict, "is_dict");
    INTERN(s_values_apart, "values_apart");
    INTERN(s_sizeof, "sizeof");
    INTERN(s_extra, "extra");
    INTERN(s_size, "size");
#undef INTERN
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    /* what this module was written against: a test compares them with memscope.census */
    if (add_object(m, "LAYOUT", Py_BuildValue("(iiiiiiii)", F_OBJ, F_LABEL, F_INDEG,
                                               F_PRIVATE, F_HOLDERS, F_ROOTREFS, F_SHARERS,
                                               F_VISIT)) < 0
        || add_object(m, "KINDS", Py_BuildValue("(iiiiiii)", K_STOP, K_GEN, K_LEAF, K_SIZED,
                                                 K_PLAIN, K_DECLARED, K_NUMPY)) < 0
        || PyModule_AddIntConstant(m, "SHARED", SHARED) < 0
        || PyModule_AddIntConstant(m, "OWN_REFS", OWN_REFS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

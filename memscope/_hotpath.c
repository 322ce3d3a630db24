/* memscope._hotpath: the hot path in C (issue 19): the event buffer, and the common
 * case of ``bind``, ``enter``, ``exit`` and ``unbind`` (memscope._hooks._make_handle has
 * the same calls in Python, which stay the reference and the fallback).
 *
 * The buffer.  Events wait here until a flush hands them to the sink.  An event of
 * small ints only (BIND, ENTER, EXIT, UNBIND, FINAL, SAMPLED...) is stored as int64
 * words in memory from malloc, outside the Python heap: the program's own tracemalloc
 * does not see it (more-itertools' suite measures its memory so; issue 17), and no
 * tuple is made until the flush.  Any other event (a table row with strings, an error)
 * is kept as the object itself, in order.  Record layout: a header word ``k >= 0``
 * followed by k field words, or ``-1`` followed by an owned ``PyObject *``.
 *
 * The calls.  A ``Sites`` object is one instrumented module's range of sites and
 * scopes; its methods are what the module's handle exposes.  Each does the common case
 * here (a value whose type is on the fast-type tables, in fast mode or a scalar; a site
 * recording every bind or skipping a sampled scalar; a scope entered between sleep
 * checks) and hands anything else, unchanged, to the Python closure of the same name,
 * which does all the rest (sampling decisions, slow sizing, full mode's deep sizes, the
 * scope sleep check).  Both write the same rows into the same buffer, so which of them
 * recorded an event makes no difference to anything downstream.  Both share one fast
 * path: ``bind_core``, used by ``bind`` and by ``enter`` for each parameter.
 *
 * Never raises into the program: an error in the fast path before its row is written
 * hands the call to the Python closure (which records the error); an exception from
 * Python code called after it (a flush, a signal handler's) goes to ``_CATCH`` as in
 * Python.  Holds no reference to a bound value.  Runs under the GIL: each call is
 * atomic with respect to other threads but for the Python code it calls.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h> /* PyFrame_Check: not in Python.h on 3.10 */
#include "_clock.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 16
#define Py_XSETREF_LOCAL(dst, src) \
    do { PyObject *_old = (PyObject *)(dst); (dst) = (src); Py_XDECREF(_old); } while (0)
#define OBJ_RECORD (-1)
/* a walk over the words reads them in order, each record's place known only once the
 * one before it is read: the words 512 bytes ahead are asked for meanwhile */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH_AHEAD(p) __builtin_prefetch((const void *)((p) + 64), 0, 3)
#else
#define PREFETCH_AHEAD(p) ((void)0)
#endif

/* words taken by the record that starts at ``w`` (its header included) */
static inline Py_ssize_t
rec_len(const int64_t *w)
{
    return w[0] == OBJ_RECORD ? 2 : (Py_ssize_t)w[0] + 1;
}

/* ---- time: exactly time.perf_counter_ns() ---------------------------------------- */

#define now_ns memscope_now_ns /* (_clock.h: the clock Python's rows read too) */

/* ---- the buffer ----------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    int64_t *slots;     /* from malloc: never seen by tracemalloc */
    Py_ssize_t used;    /* words used */
    Py_ssize_t cap;     /* words allocated */
    Py_ssize_t n;       /* events */
    unsigned char *kinds;  /* each event's kind (0 where it has none in 0..255) */
    Py_ssize_t kcap;    /* bytes allocated there */
    Py_ssize_t nobj;    /* object records */
    Py_ssize_t nbad;    /* events with no kind 0..255 */
} Buffer;

/* the kind of an object record's event: its tuple's first item, if an int 0..255; else
 * -1 */
static int
obj_kind(PyObject *o)
{
    long long k = -1;
    if (PyTuple_Check(o) && PyTuple_GET_SIZE(o) > 0
        && PyLong_CheckExact(PyTuple_GET_ITEM(o, 0))) {
        k = PyLong_AsLongLong(PyTuple_GET_ITEM(o, 0));
        if (k == -1 && PyErr_Occurred()) {
            PyErr_Clear();
        }
    }
    return k < 0 || k > 255 ? -1 : (int)k;
}

/* room to note one more event's kind */
static inline int
buf_reserve_kind(Buffer *b)
{
    if (b->n < b->kcap) {
        return 0;
    }
    Py_ssize_t cap = b->kcap ? b->kcap * 2 : 8192;
    unsigned char *p = (unsigned char *)realloc(b->kinds, (size_t)cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->kinds = p;
    b->kcap = cap;
    return 0;
}

static inline void
buf_note_kind(Buffer *b, long long k)
{
    if (k < 0 || k > 255) {
        b->kinds[b->n] = 0;
        b->nbad++;
    } else {
        b->kinds[b->n] = (unsigned char)k;
    }
}

static int
buf_reserve(Buffer *b, Py_ssize_t words)
{
    if (b->used + words <= b->cap) {
        return 0;
    }
    Py_ssize_t cap = b->cap ? b->cap : 8192;
    while (cap < b->used + words) {
        cap *= 2;
    }
    int64_t *p = (int64_t *)realloc(b->slots, (size_t)cap * sizeof(int64_t));
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->slots = p;
    b->cap = cap;
    return 0;
}

static inline int
buf_push_ints(Buffer *b, const int64_t *vals, int k)
{
    if ((b->used + k + 1 > b->cap && buf_reserve(b, k + 1) < 0)
        || buf_reserve_kind(b) < 0) {
        return -1;
    }
    int64_t *w = b->slots + b->used;
    w[0] = k;
    for (int i = 0; i < k; i++) {  /* (a few words: no call to memcpy) */
        w[1 + i] = vals[i];
    }
    buf_note_kind(b, k > 0 ? vals[0] : -1);
    b->used += k + 1;
    b->n += 1;
    return 0;
}

/* A row of the calls' own (BIND, ENTER, EXIT, UNBIND), written in place: ``buf_row``
 * gives room for ROW_WORDS fields (NULL: no memory, exception set), the caller writes
 * the fields there, with no Python code run meanwhile, and ``buf_row_done`` counts the
 * k of them (a row built on the stack and copied was read back before its stores had
 * landed: a stall a row). */
#define ROW_WORDS 11
static inline int64_t *
buf_row(Buffer *b)
{
    if ((b->used + ROW_WORDS + 1 > b->cap && buf_reserve(b, ROW_WORDS + 1) < 0)
        || buf_reserve_kind(b) < 0) {
        return NULL;
    }
    return b->slots + b->used + 1;
}

static inline void
buf_row_done(Buffer *b, int k)
{
    int64_t *w = b->slots + b->used;
    w[0] = k;
    buf_note_kind(b, w[1]);
    b->used += k + 1;
    b->n += 1;
}

static int
buf_push_obj(Buffer *b, PyObject *obj)
{
    if (buf_reserve(b, 2) < 0 || buf_reserve_kind(b) < 0) {
        return -1;
    }
    int64_t *w = b->slots + b->used;
    w[0] = OBJ_RECORD;
    w[1] = (int64_t)(intptr_t)Py_NewRef(obj);
    buf_note_kind(b, obj_kind(obj));
    b->nobj++;
    b->used += 2;
    b->n += 1;
    return 0;
}

/* An event: a tuple of at most MAX_FIELDS exact ints that fit in 64 bits is stored as
 * words (bools, big ints and anything else: as the object). */
static int
buf_push(Buffer *b, PyObject *ev)
{
    if (PyTuple_CheckExact(ev)) {
        Py_ssize_t k = PyTuple_GET_SIZE(ev);
        if (k <= MAX_FIELDS) {
            int64_t vals[MAX_FIELDS];
            Py_ssize_t i;
            for (i = 0; i < k; i++) {
                PyObject *x = PyTuple_GET_ITEM(ev, i);
                int overflow = 0;
                if (!PyLong_CheckExact(x)) {
                    break;
                }
                vals[i] = PyLong_AsLongLongAndOverflow(x, &overflow);
                if (overflow || (vals[i] == -1 && PyErr_Occurred())) {
                    PyErr_Clear();
                    break;
                }
            }
            if (i == k) {
                return buf_push_ints(b, vals, (int)k);
            }
        }
    }
    return buf_push_obj(b, ev);
}

/* The record at ``w`` as a new reference (an object record: the object itself, a tuple
 * made for an int one); its length in words in *len. */
static PyObject *
buf_item(int64_t *w, Py_ssize_t *len)
{
    if (w[0] == OBJ_RECORD) {
        PyObject *o = (PyObject *)(intptr_t)w[1];
        *len = 2;
        return Py_NewRef(o);
    }
    /* copied out first: making the tuple may run a collection, whose callbacks (and
     * the threads that run meanwhile) may append to the buffer and move its words */
    int64_t vals[MAX_FIELDS];
    Py_ssize_t k = (Py_ssize_t)w[0];
    *len = k + 1;
    memcpy(vals, w + 1, (size_t)k * sizeof(int64_t));
    PyObject *t = PyTuple_New(k);
    if (t == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *x = PyLong_FromLongLong(vals[i]);
        if (x == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, x);
    }
    return t;
}

static void
buf_release(Buffer *b)
{
    Py_ssize_t at = 0;
    while (at < b->used) {
        int64_t *w = b->slots + at;
        if (w[0] == OBJ_RECORD) {
            Py_DECREF((PyObject *)(intptr_t)w[1]);
            at += 2;
        } else {
            at += w[0] + 1;
        }
    }
    b->used = 0;
    b->n = 0;
    b->nobj = 0;
    b->nbad = 0;
}

/* the kinds and counts noted again from the words (after a take that left some) */
static void
buf_renote(Buffer *b)
{
    Py_ssize_t at = 0, i = 0;
    b->nobj = 0;
    b->nbad = 0;
    while (at < b->used) {  /* (the kinds array holds b->n bytes already) */
        int64_t *w = b->slots + at;
        int obj = w[0] == OBJ_RECORD;
        long long k = obj ? obj_kind((PyObject *)(intptr_t)w[1]) : (w[0] > 0 ? w[1] : -1);
        b->nobj += obj;
        if (k < 0 || k > 255) {
            b->kinds[i] = 0;
            b->nbad++;
        } else {
            b->kinds[i] = (unsigned char)k;
        }
        at += rec_len(w);
        i++;
    }
}

static PyObject *
Buffer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if ((kwds != NULL && PyDict_GET_SIZE(kwds)) || PyTuple_GET_SIZE(args)) {
        PyErr_SetString(PyExc_TypeError, "Buffer() takes no arguments");
        return NULL;
    }
    Buffer *b = (Buffer *)type->tp_alloc(type, 0);
    return (PyObject *)b;
}

static void
Buffer_dealloc(Buffer *b)
{
    buf_release(b);
    free(b->slots);
    free(b->kinds);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static Py_ssize_t
Buffer_len(Buffer *b)
{
    return b->n;
}

static PyObject *
Buffer_append(Buffer *b, PyObject *ev)
{
    if (buf_push(b, ev) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Buffer_extend(Buffer *b, PyObject *events)
{
    PyObject *seq = PySequence_Fast(events, "extend: a sequence of events");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t k = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < k; i++) {
        if (buf_push(b, PySequence_Fast_GET_ITEM(seq, i)) < 0) {
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    Py_RETURN_NONE;
}

static PyObject *Buffer_snapshot(Buffer *b, PyObject *Py_UNUSED(ignored));

static PyObject *
Buffer_iter(Buffer *b)
{
    PyObject *all = Buffer_snapshot(b, NULL);
    if (all == NULL) {
        return NULL;
    }
    PyObject *it = PyObject_GetIter(all);
    Py_DECREF(all);
    return it;
}

/* ---- a batch: the events one flush takes, still as words -------------------------
 *
 * What a sink that says it can (``accepts_batches``) gets from a flush instead of a
 * list of tuples: a read-only sequence whose items are made as tuples when asked for,
 * plus what the capture writer needs to encode int rows without any tuple: each
 * event's kind (``kinds``), a subset by a mask (``select``) and the rows of one width
 * packed as little-endian int64 (``packed``).
 */

typedef struct {
    PyObject_HEAD
    int64_t *words;     /* malloc'd records, as in the buffer (object records own a ref) */
    Py_ssize_t *offs;   /* malloc'd: the first word of each event; NULL until asked for
                         * (an item, a selection): the flush's own passes walk the words */
    Py_ssize_t n;
    Py_ssize_t nwords;
    Py_ssize_t cap;     /* words allocated */
    Py_ssize_t nobj;    /* object records among them */
    unsigned char *kinds;  /* malloc'd: each event's kind, as the buffer noted them; NULL:
                            * read from the words when asked */
    Py_ssize_t nbad;    /* events with no kind 0..255 (kinds is not NULL) */
} Batch;

static PyTypeObject BatchType;

/* The words of the last batch freed, kept for the buffer's next hand-over (a flush hands
 * the buffer's words to its batch and gives the buffer these: no copy, no new pages). */
static int64_t *spare_words = NULL;
static Py_ssize_t spare_cap = 0;

static Batch *
batch_alloc(Py_ssize_t n, Py_ssize_t nwords)
{
    Batch *b = PyObject_New(Batch, &BatchType);
    if (b == NULL) {
        return NULL;
    }
    b->words = (int64_t *)malloc((size_t)(nwords ? nwords : 1) * sizeof(int64_t));
    b->offs = (Py_ssize_t *)malloc((size_t)(n ? n : 1) * sizeof(Py_ssize_t));
    b->n = 0;
    b->nwords = 0;
    b->cap = nwords ? nwords : 1;
    b->nobj = 0;
    b->kinds = NULL;
    b->nbad = 0;
    if (b->words == NULL || b->offs == NULL) {
        Py_DECREF(b);
        PyErr_NoMemory();
        return NULL;
    }
    return b;
}

/* copy one record into the batch (an object record's reference: a new one) */
static void
batch_add(Batch *b, const int64_t *w)
{
    Py_ssize_t len = rec_len(w);
    memcpy(b->words + b->nwords, w, (size_t)len * sizeof(int64_t));
    if (w[0] == OBJ_RECORD) {
        Py_INCREF((PyObject *)(intptr_t)w[1]);
        b->nobj++;
    }
    b->offs[b->n++] = b->nwords;
    b->nwords += len;
}

/* the first word of each event (made on first use); -1 (MemoryError) if no memory */
static int
batch_offs(Batch *b)
{
    if (b->offs != NULL) {
        return 0;
    }
    b->offs = (Py_ssize_t *)malloc((size_t)(b->n ? b->n : 1) * sizeof(Py_ssize_t));
    if (b->offs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < b->n; i++) {
        b->offs[i] = at;
        at += rec_len(b->words + at);
    }
    return 0;
}

static void
Batch_dealloc(Batch *b)
{
    if (b->words != NULL && b->nobj) {
        Py_ssize_t at = 0;
        for (Py_ssize_t i = 0; i < b->n; i++) {
            int64_t *w = b->words + at;
            if (w[0] == OBJ_RECORD) {
                Py_DECREF((PyObject *)(intptr_t)w[1]);
            }
            at += rec_len(w);
        }
    }
    if (b->words != NULL && b->cap > spare_cap) {  /* the larger one kept */
        free(spare_words);
        spare_words = b->words;
        spare_cap = b->cap;
    } else {
        free(b->words);
    }
    free(b->offs);
    free(b->kinds);
    PyObject_Free(b);
}

static Py_ssize_t
Batch_len(Batch *b)
{
    return b->n;
}

static PyObject *
Batch_item(Batch *b, Py_ssize_t i)
{
    if (i < 0 || i >= b->n) {
        PyErr_SetString(PyExc_IndexError, "batch index out of range");
        return NULL;
    }
    if (batch_offs(b) < 0) {
        return NULL;
    }
    Py_ssize_t len;
    return buf_item(b->words + b->offs[i], &len);
}

static PyObject *
Batch_subscript(Batch *b, PyObject *key)
{
    if (PyIndex_Check(key)) {
        Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred()) {
            return NULL;
        }
        return Batch_item(b, i < 0 ? i + b->n : i);
    }
    if (!PySlice_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "batch indices are ints or slices");
        return NULL;
    }
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(key, &start, &stop, &step) < 0) {
        return NULL;
    }
    Py_ssize_t k = PySlice_AdjustIndices(b->n, &start, &stop, step);
    if (batch_offs(b) < 0) {
        return NULL;
    }
    Py_ssize_t words = 0;
    for (Py_ssize_t j = 0, i = start; j < k; j++, i += step) {
        int64_t *w = b->words + b->offs[i];
        words += rec_len(w);
    }
    Batch *out = batch_alloc(k, words);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t j = 0, i = start; j < k; j++, i += step) {
        batch_add(out, b->words + b->offs[i]);
    }
    return (PyObject *)out;
}

/* kinds() -> bytes | None: each event's kind (None: a kind that is not an int 0..255) */
static int event_kind(const int64_t *w); /* an event's kind, -1: none in 0-255 */

static PyObject *
Batch_kinds(Batch *b, PyObject *Py_UNUSED(ignored))
{
    if (b->kinds != NULL) {  /* as the buffer noted them */
        if (b->nbad) {
            Py_RETURN_NONE;
        }
        return PyBytes_FromStringAndSize((const char *)b->kinds, b->n);
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, b->n);
    if (out == NULL) {
        return NULL;
    }
    char *p = PyBytes_AS_STRING(out);
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < b->n; i++) {
        int64_t *w = b->words + at;
        at += rec_len(w);
        int k = event_kind(w);
        if (k < 0) {
            Py_DECREF(out);
            Py_RETURN_NONE;
        }
        p[i] = (char)k;
    }
    return out;
}

/* select(mask) -> Batch: the events whose byte in ``mask`` is not 0 */
static PyObject *
Batch_select(Batch *b, PyObject *mask)
{
    if (!PyBytes_Check(mask) || PyBytes_GET_SIZE(mask) < b->n) {
        PyErr_SetString(PyExc_TypeError, "select(mask): bytes, one per event");
        return NULL;
    }
    const char *m = PyBytes_AS_STRING(mask);
    if (batch_offs(b) < 0) {
        return NULL;
    }
    Py_ssize_t k = 0, words = 0;
    for (Py_ssize_t i = 0; i < b->n; i++) {
        if (m[i]) {
            int64_t *w = b->words + b->offs[i];
            k++;
            words += rec_len(w);
        }
    }
    Batch *out = batch_alloc(k, words);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < b->n; i++) {
        if (m[i]) {
            batch_add(out, b->words + b->offs[i]);
        }
    }
    return (PyObject *)out;
}

/* packed(width) -> bytes | None: every event as ``width`` little-endian int64, row
 * after row (struct "<{width}q" of each), or None unless every event is an int row of
 * that width */
static PyObject *
Batch_packed(Batch *b, PyObject *arg)
{
    Py_ssize_t width = PyLong_AsSsize_t(arg);
    if (width == -1 && PyErr_Occurred()) {
        return NULL;
    }
#if PY_LITTLE_ENDIAN
    if (width <= 0) {
        Py_RETURN_NONE;
    }
    if (batch_offs(b) < 0) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < b->n; i++) {
        if (b->words[b->offs[i]] != width) {
            Py_RETURN_NONE;
        }
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, b->n * width * 8);
    if (out == NULL) {
        return NULL;
    }
    char *p = PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < b->n; i++) {
        memcpy(p + i * width * 8, b->words + b->offs[i] + 1, (size_t)width * 8);
    }
    return out;
#else
    Py_RETURN_NONE;
#endif
}

/* encode(bind, user_bits, max_cols, layout_columns, col_planes) -> (groups, user_binds)
 * | None: the events chunk's groups in one go, with no tuple, no selected batch and no
 * packed copy (``Encoder._encode`` in memscope/capture/writer.py is the reference).
 *
 * ``groups``: one ``(kind, count, body)`` per kind present, ascending, where ``body``
 * is the group's bytes after its kind and count when every row of that kind is an int
 * row of one width with at most ``max_cols`` fields after the kind: ``layout_columns``,
 * uvarint(columns), then per column ``col_planes``, uvarint(length), the mask byte and
 * the eight planes (a stored plane: one byte a row; another: the one byte every row has
 * there); else None (the caller encodes that kind's rows itself).  ``user_binds``: the
 * rows of kind ``bind`` with a body whose site (field 2) is flagged in ``user_bits``
 * (bytes-like, one byte an id; None: no user site).  None for the whole call when some
 * event has no kind 0..255 (``kinds()`` is None). */

typedef struct {
    Py_ssize_t count;
    Py_ssize_t width;   /* words of its rows (kind included); -1: not all int rows of one */
    Py_ssize_t at;      /* rows written so far (the third pass) */
    int64_t first[MAX_FIELDS];
    uint64_t acc[MAX_FIELDS];  /* bits that differ from the first row's, per field */
    int nplanes;        /* stored planes */
    unsigned char field[MAX_FIELDS * 8], shift[MAX_FIELDS * 8];
    unsigned char *dst[MAX_FIELDS * 8];
    PyObject *body;
} EncGroup;

static int
event_kind(const int64_t *w)
{
    long long k = -1;
    if (w[0] == OBJ_RECORD) {
        PyObject *o = (PyObject *)(intptr_t)w[1];
        if (PyTuple_Check(o) && PyTuple_GET_SIZE(o) > 0
            && PyLong_CheckExact(PyTuple_GET_ITEM(o, 0))) {
            k = PyLong_AsLongLong(PyTuple_GET_ITEM(o, 0));
            if (k == -1 && PyErr_Occurred()) {
                PyErr_Clear();
            }
        }
    } else if (w[0] > 0) {
        k = w[1];
    }
    return k < 0 || k > 255 ? -1 : (int)k;
}

static unsigned char *
put_uvarint(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

static Py_ssize_t
uvarint_len(uint64_t v)
{
    Py_ssize_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static PyObject *
Batch_encode(Batch *b, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "encode(bind, user_bits, max_cols, layout_columns, col_planes)");
        return NULL;
    }
    long bind = PyLong_AsLong(args[0]);
    long max_cols = PyLong_AsLong(args[2]);
    long layout = PyLong_AsLong(args[3]);
    long colenc = PyLong_AsLong(args[4]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer bits = {0};
    int have_bits = args[1] != Py_None;
    if (have_bits && PyObject_GetBuffer(args[1], &bits, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result = NULL, *groups = NULL;
    long long users = 0;
    EncGroup *g[256] = {NULL};
    unsigned char *kinds = (unsigned char *)malloc((size_t)(b->n ? b->n : 1));
    /* the first field word of each event, then of each group's rows, group by group */
    Py_ssize_t *offs = (Py_ssize_t *)malloc((size_t)(b->n ? b->n : 1) * sizeof(Py_ssize_t));
    Py_ssize_t *rows = (Py_ssize_t *)malloc((size_t)(b->n ? b->n : 1) * sizeof(Py_ssize_t));
    if (kinds == NULL || offs == NULL || rows == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* pass 1: each event's kind; per kind, its count, its rows' width, and which bits of
     * each field differ from the first row's (the planes to store) */
    const unsigned char *noted = b->kinds != NULL && !b->nbad ? b->kinds : NULL;
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < b->n; i++) {
        const int64_t *w = b->words + at;
        PREFETCH_AHEAD(w);
        offs[i] = at + 1;
        at += rec_len(w);
        int k = noted != NULL ? noted[i] : event_kind(w);
        if (k < 0) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        kinds[i] = (unsigned char)k;
        EncGroup *e = g[k];
        if (e == NULL) {
            e = g[k] = (EncGroup *)calloc(1, sizeof(EncGroup));
            if (e == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            e->width = w[0] == OBJ_RECORD ? -1 : (Py_ssize_t)w[0];
            if (e->width > 0) {
                memcpy(e->first, w + 1, (size_t)e->width * sizeof(int64_t));
            }
        } else if (e->width > 0) {
            if (w[0] != e->width) {
                e->width = -1;
            } else {
                for (Py_ssize_t f = 1; f < e->width; f++) {
                    e->acc[f] |= (uint64_t)(w[1 + f] ^ e->first[f]);
                }
            }
        }
        e->count++;
    }
    /* pass 2: each int group's body, its headers and single-byte planes written, the
     * place of each stored plane noted */
    int any_body = 0;
    for (int k = 0; k < 256; k++) {
        EncGroup *e = g[k];
        if (e == NULL || e->width <= 0 || e->width - 1 > max_cols) {
            continue;
        }
        Py_ssize_t n = e->count, ncols = e->width - 1, size = 1 + uvarint_len((uint64_t)ncols);
        for (Py_ssize_t f = 1; f <= ncols; f++) {
            int stored = 0;
            for (int p = 0; p < 8; p++) {
                stored += ((e->acc[f] >> (8 * p)) & 0xFF) != 0;
            }
            Py_ssize_t len = 9 + (n - 1) * stored;
            size += 1 + uvarint_len((uint64_t)len) + len;
        }
        e->body = PyBytes_FromStringAndSize(NULL, size);
        if (e->body == NULL) {
            goto done;
        }
        unsigned char *o = (unsigned char *)PyBytes_AS_STRING(e->body);
        *o++ = (unsigned char)layout;
        o = put_uvarint(o, (uint64_t)ncols);
        for (Py_ssize_t f = 1; f <= ncols; f++) {
            int mask = 0, stored = 0;
            for (int p = 0; p < 8; p++) {
                if (((e->acc[f] >> (8 * p)) & 0xFF) != 0) {
                    mask |= 1 << p;
                    stored++;
                }
            }
            *o++ = (unsigned char)colenc;
            o = put_uvarint(o, (uint64_t)(9 + (n - 1) * stored));
            *o++ = (unsigned char)mask;
            for (int p = 0; p < 8; p++) {
                if (mask >> p & 1) {
                    e->field[e->nplanes] = (unsigned char)f;
                    e->shift[e->nplanes] = (unsigned char)(8 * p);
                    e->dst[e->nplanes++] = o;
                    o += n;
                } else {
                    *o++ = (unsigned char)((uint64_t)e->first[f] >> (8 * p));
                }
            }
        }
        any_body = 1;
    }
    /* pass 3: each group's rows in order (a pass over the offsets, no walk), then its
     * stored planes, plane by plane; the user binds */
    if (any_body) {
        Py_ssize_t start = 0;
        for (int k = 0; k < 256; k++) {
            if (g[k] != NULL) {
                g[k]->at = start;
                start += g[k]->count;
            }
        }
        for (Py_ssize_t i = 0; i < b->n; i++) {
            rows[g[kinds[i]]->at++] = offs[i];
        }
        const unsigned char *ub = have_bits ? (const unsigned char *)bits.buf : NULL;
        Py_ssize_t nb = have_bits ? bits.len : 0;
        const int64_t *words = b->words;
        start = 0;
        for (int k = 0; k < 256; k++) {
            EncGroup *e = g[k];
            if (e == NULL) {
                continue;
            }
            const Py_ssize_t *r = rows + start, cnt = e->count;
            start += cnt;
            if (e->body == NULL) {
                continue;
            }
            for (int j = 0; j < e->nplanes; j++) {
                unsigned char *d = e->dst[j];
                int f = e->field[j], sh = e->shift[j];
                for (Py_ssize_t i = 0; i < cnt; i++) {
                    d[i] = (unsigned char)((uint64_t)words[r[i] + f] >> sh);
                }
            }
            if (k == bind && e->width >= 3 && nb) {
                for (Py_ssize_t i = 0; i < cnt; i++) {
                    int64_t site = words[r[i] + 2];
                    users += site >= 0 && site < nb && ub[site];
                }
            }
        }
    }
    groups = PyList_New(0);
    if (groups == NULL) {
        goto done;
    }
    for (int k = 0; k < 256; k++) {
        EncGroup *e = g[k];
        if (e == NULL) {
            continue;
        }
        PyObject *item = Py_BuildValue("(inO)", k, e->count, e->body ? e->body : Py_None);
        if (item == NULL || PyList_Append(groups, item) < 0) {
            Py_XDECREF(item);
            goto done;
        }
        Py_DECREF(item);
    }
    result = Py_BuildValue("(OL)", groups, users);
done:
    for (int k = 0; k < 256; k++) {
        if (g[k] != NULL) {
            Py_XDECREF(g[k]->body);
            free(g[k]);
        }
    }
    Py_XDECREF(groups);
    free(kinds);
    free(offs);
    free(rows);
    if (have_bits) {
        PyBuffer_Release(&bits);
    }
    return result;
}

static PyMethodDef Batch_methods[] = {
    {"kinds", (PyCFunction)Batch_kinds, METH_NOARGS,
     "kinds($self, /)\n--\n\nEach event's kind as bytes; None if one is not 0..255."},
    {"select", (PyCFunction)Batch_select, METH_O,
     "select($self, mask, /)\n--\n\nThe events whose byte in mask is not 0, as a batch."},
    {"packed", (PyCFunction)Batch_packed, METH_O,
     "packed($self, width, /)\n--\n\nEvery row as width little-endian int64; None unless\n"
     "every event is an int row of that width."},
    {"encode", (PyCFunction)(void (*)(void))Batch_encode, METH_FASTCALL,
     "encode($self, bind, user_bits, max_cols, layout_columns, col_planes, /)\n--\n\n"
     "Each kind's (kind, count, body or None), ascending, and the user binds; None if\n"
     "some event has no kind 0..255."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Batch_as_sequence = {
    .sq_length = (lenfunc)Batch_len,
    .sq_item = (ssizeargfunc)Batch_item,
};

static PyMappingMethods Batch_as_mapping = {
    .mp_length = (lenfunc)Batch_len,
    .mp_subscript = (binaryfunc)Batch_subscript,
};

static PyTypeObject BatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "memscope._hotpath.Batch",
    .tp_doc = "The events of one flush, as words: a read-only sequence of tuples.",
    .tp_basicsize = sizeof(Batch),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)Batch_dealloc,
    .tp_methods = Batch_methods,
    .tp_as_sequence = &Batch_as_sequence,
    .tp_as_mapping = &Batch_as_mapping,
};

/* take(n, into): the first n events (at most all), as a list, removed from the
 * buffer; ``into[0]`` is set to that list before they are removed (a flush keeps its
 * batch there until the sink has it: no moment when the events are in neither). */
static PyObject *
Buffer_take(Buffer *b, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 3 || !PyList_Check(args[1]) || PyList_GET_SIZE(args[1]) < 1) {
        PyErr_SetString(PyExc_TypeError, "take(n, into[, batch]): into is a list of one item");
        return NULL;
    }
    int as_batch = nargs == 3 && PyObject_IsTrue(args[2]) == 1;
    Py_ssize_t n = PyLong_AsSsize_t(args[0]);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n > b->n) {
        n = b->n;
    }
    if (n < 0) {
        n = 0;
    }
    if (as_batch && n == b->n && n > 0) {
        /* all of them: the buffer's words handed to the batch as they are, and the
         * buffer given the spare words (or none: it allocates on its next event) */
        Batch *bt = PyObject_New(Batch, &BatchType);
        if (bt == NULL) {
            return NULL;
        }
        bt->kinds = (unsigned char *)malloc((size_t)n);
        if (bt->kinds == NULL) {
            bt->words = NULL;
            bt->offs = NULL;
            bt->n = 0;
            Py_DECREF(bt);
            return PyErr_NoMemory();
        }
        memcpy(bt->kinds, b->kinds, (size_t)n);
        bt->nbad = b->nbad;
        bt->words = b->slots;
        bt->offs = NULL;
        bt->n = b->n;
        bt->nwords = b->used;
        bt->cap = b->cap;
        bt->nobj = b->nobj;
        b->slots = spare_words;
        b->cap = spare_words != NULL ? spare_cap : 0;
        spare_words = NULL;
        spare_cap = 0;
        b->used = 0;
        b->n = 0;
        b->nobj = 0;
        b->nbad = 0;
        /* (the old item's release runs no Python code: a batch or None) */
        if (PyList_SetItem(args[1], 0, Py_NewRef((PyObject *)bt)) < 0) {
            /* the words go back to the buffer, whose events they still are */
            spare_words = b->slots;
            spare_cap = b->cap;
            b->slots = bt->words;
            b->cap = bt->cap;
            b->used = bt->nwords;
            b->n = bt->n;
            b->nobj = bt->nobj;
            b->nbad = bt->nbad;
            bt->words = NULL;
            bt->n = 0;
            Py_DECREF(bt);
            return NULL;
        }
        return (PyObject *)bt;
    }
    if (as_batch) {  /* the words copied into a batch: no tuple made */
        Py_ssize_t at = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t *w = b->slots + at;
            at += rec_len(w);
        }
        Batch *bt = batch_alloc(n, at);
        if (bt == NULL) {
            return NULL;
        }
        Py_ssize_t p = 0;
        for (Py_ssize_t i = 0; i < n; i++) {  /* object references: handed over */
            int64_t *w = b->slots + p;
            Py_ssize_t len = rec_len(w);
            memcpy(bt->words + bt->nwords, w, (size_t)len * sizeof(int64_t));
            bt->offs[bt->n++] = bt->nwords;
            bt->nwords += len;
            bt->nobj += w[0] == OBJ_RECORD;
            p += len;
        }
        if (PyList_SetItem(args[1], 0, Py_NewRef((PyObject *)bt)) < 0) {
            /* the references are the buffer's still: the batch must not drop them */
            bt->n = 0;
            bt->nobj = 0;
            Py_DECREF(bt);
            return NULL;
        }
        memmove(b->slots, b->slots + at, (size_t)(b->used - at) * sizeof(int64_t));
        b->used -= at;
        b->n -= n;
        buf_renote(b);
        return (PyObject *)bt;
    }
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        return NULL;
    }
    /* tuples first, nothing removed: a failure leaves the buffer as it was */
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        PyObject *item = buf_item(b->slots + at, &len);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
        at += len;
    }
    if (PyList_SetItem(args[1], 0, Py_NewRef(out)) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    /* then drop the records taken (the object records' own references) */
    Py_ssize_t p = 0;
    while (p < at) {
        int64_t *w = b->slots + p;
        if (w[0] == OBJ_RECORD) {
            Py_DECREF((PyObject *)(intptr_t)w[1]);
            p += 2;
        } else {
            p += w[0] + 1;
        }
    }
    memmove(b->slots, b->slots + at, (size_t)(b->used - at) * sizeof(int64_t));
    b->used -= at;
    b->n -= n;
    buf_renote(b);
    return out;
}

static PyObject *
Buffer_snapshot(Buffer *b, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyList_New(b->n);
    if (out == NULL) {
        return NULL;
    }
    /* the events counted when the list was made (a collection it or a row's tuple
     * starts may run code that records more, after them: for the next snapshot) */
    Py_ssize_t at = 0, n = PyList_GET_SIZE(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        PyObject *item = buf_item(b->slots + at, &len);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
        at += len;
    }
    return out;
}

static PyObject *
Buffer_clear(Buffer *b, PyObject *Py_UNUSED(ignored))
{
    buf_release(b);
    Py_RETURN_NONE;
}

static PyMethodDef Buffer_methods[] = {
    {"append", (PyCFunction)Buffer_append, METH_O,
     "append($self, event, /)\n--\n\nAdd one event at the end."},
    {"extend", (PyCFunction)Buffer_extend, METH_O,
     "extend($self, events, /)\n--\n\nAdd events at the end, in order."},
    {"take", (PyCFunction)(void (*)(void))Buffer_take, METH_FASTCALL,
     "take($self, n, into, batch=False, /)\n--\n\nThe first n events, removed, as a list\n"
     "of tuples (a Batch if batch); into[0] holds them before they are removed."},
    {"snapshot", (PyCFunction)Buffer_snapshot, METH_NOARGS,
     "snapshot($self, /)\n--\n\nEvery event, as a list of tuples; none removed."},
    {"clear", (PyCFunction)Buffer_clear, METH_NOARGS,
     "clear($self, /)\n--\n\nDrop every event."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Buffer_as_sequence = {
    .sq_length = (lenfunc)Buffer_len,
};

static PyTypeObject BufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "memscope._hotpath.Buffer",
    .tp_doc = "Events not yet flushed, stored outside the Python heap.",
    .tp_basicsize = sizeof(Buffer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Buffer_new,
    .tp_dealloc = (destructor)Buffer_dealloc,
    .tp_methods = Buffer_methods,
    .tp_as_sequence = &Buffer_as_sequence,
    .tp_iter = (getiterfunc)Buffer_iter,
};

/* ---- state shared by every module's sites (set by setup) ------------------------- */

static Buffer *S_buf;
static PyObject *S_rate, *S_count, *S_streak, *S_bound, *S_entered;  /* lists */
static PyObject *S_static, *S_fast;                                  /* dicts */
static PyObject *S_asleep, *S_group_n;  /* per-site sleep flags; bind_group's known groups */
static PyObject *S_plans;  /* _attr_plans: (id(type), attr) -> (weakref, how, get) */
static PyTypeObject *plan_tp;  /* bind_attr: the last type looked up (its address only) */
static PyObject *plan_tid;     /* ... and its id(), an int (strong) */
static PyObject *plan_key;     /* ... and the one key tuple (untracked, items borrowed) */
static PyObject *S_flush, *S_start_sampling, *S_thread_ident;
static PyObject *S_task_key, *S_catch;                               /* callables */
static PyObject *S_globals, *S_modules;
static PyObject *str_get_running_loop, *str_asyncio;
static PyObject *where_bind, *where_enter, *where_bind_group;
static PyObject *where_bind_attr, *S_missing;
static int S_full = 0;
static Py_ssize_t S_flush_at = 8192;
static long S_scope_streak = 256, S_small_bytes = 256, S_scalar_streak = 64;
static int64_t K_BIND, K_ENTER, K_EXIT, K_UNBIND;
static int S_ready = 0;
static long long S_tok = 0;  /* the last scope-instance token given (Python's too) */
static PyObject *str_tkey;   /* this thread's ident, in its thread state's dict */
/* the ident of the thread that entered the last scope, and that thread's state: a scope
 * entered by the same thread again needs no look-up in its dict */
static PyThreadState *last_ts = NULL;
static uint64_t last_tsid = 0;
static PyObject *last_ident = NULL;

/* list[i] as a C long; 0 with *ok = 0 when it is not there or not an int */
static inline long
list_long(PyObject *l, Py_ssize_t i, int *ok)
{
    if (i < 0 || i >= PyList_GET_SIZE(l)) {
        *ok = 0;
        return 0;
    }
    PyObject *x = PyList_GET_ITEM(l, i);
    if (!PyLong_CheckExact(x)) {
        *ok = 0;
        return 0;
    }
    int overflow = 0;
    long v = PyLong_AsLongAndOverflow(x, &overflow);
    if (overflow) {
        *ok = 0;
        return 0;
    }
    return v;
}

/* list[i] = v, i known to be in range */
static inline int
list_set_long(PyObject *l, Py_ssize_t i, long v)
{
    PyObject *x = PyLong_FromLong(v);
    if (x == NULL) {
        return -1;
    }
    PyObject *old = PyList_GET_ITEM(l, i);
    if (x == old) {  /* a small int that is there already (a site's flag, bound before) */
        Py_DECREF(x);
        return 0;
    }
    PyList_SET_ITEM(l, i, x);
    Py_DECREF(old);
    return 0;
}

/* An exception raised by Python code a call ran after its row was written: as the
 * Python closures do, ``_CATCH[where, exc]`` says whether it goes on to the program.
 * Returns -1 (exception set) if it must, 0 (cleared) if not. */
static int
hand_to_catch(PyObject *where)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value == NULL) {
        Py_XDECREF(type);
        Py_XDECREF(tb);
        return 0;
    }
    if (tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    PyObject *key = PyTuple_Pack(2, where, value);
    PyObject *res = key ? PyObject_GetItem(S_catch, key) : NULL;
    Py_XDECREF(key);
    int again = res != NULL && PyObject_IsTrue(res) == 1;
    if (res == NULL) {
        PyErr_Clear();
    }
    Py_XDECREF(res);
    if (again) {
        PyErr_Restore(type, value, tb);
        return -1;
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return 0;
}

/* the buffer is full: hand it to the sink (Python's _flush) */
static int
maybe_flush(PyObject *where)
{
    if (S_buf->n < S_flush_at) {
        return 0;
    }
    PyObject *r = PyObject_CallNoArgs(S_flush);
    if (r == NULL) {
        return hand_to_catch(where);
    }
    Py_DECREF(r);
    return 0;
}

/* ---- the sites of one module ----------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    Py_ssize_t base;    /* the module's first global site */
    Py_ssize_t sbase;   /* its first global scope */
    PyObject *py_bind;  /* the Python closures: the rest of each call */
    PyObject *py_enter;
    PyObject *py_bind_group;
    PyObject *py_bind_attr;
} Sites;

/* DONE: recorded or rightly skipped; TO_PYTHON: hand the call to the Python closure;
 * FAILED: Python code we called (not a hook) raised: ``_CATCH`` decides; RAISED: a
 * Python hook raised, its own ``_CATCH`` having decided so: passed on as it is (asking
 * ``_CATCH`` again would count and decide the same interrupt twice) */
enum { DONE = 1, TO_PYTHON = 0, FAILED = -1, RAISED = -2 };

/* ---- the fast-type tables, cached ---------------------------------------------------
 *
 * ``_hooks._static_types`` / ``_fast_types`` give, per type, (type index, C
 * ``__sizeof__``, extra bytes, scalar?, immutable?). Looking them up costs a dict lookup
 * (and an int key for a heap type) and five conversions per bind; this direct-mapped
 * cache keeps the entry as C values, keyed by the type's address *and* its version tag
 * (``tp_version_tag``): CPython never gives a tag twice, so a class that died and a new
 * one at its address never match, and a class that is changed gets a new tag (a miss:
 * the tables are read again). No reference to the type is held. ``forget_types()``
 * empties it when the tables change (a sizer registered: ``memscope.sizing``). */

#define TYPE_CACHE 512
typedef struct {
    PyTypeObject *tp;
    unsigned int tag;
    int64_t ti, extra;
    PyObject *sizeof_;   /* a strong reference: a C method descriptor or getsizeof */
    PyCFunction direct;  /* its C function when it is a METH_NOARGS method descriptor */
    char scalar, immutable;
} TypeEntry;
static TypeEntry type_cache[TYPE_CACHE];

static inline unsigned int
type_tag(PyTypeObject *tp)
{
    if (!PyType_HasFeature(tp, Py_TPFLAGS_VALID_VERSION_TAG)) {
        return 0;
    }
    return tp->tp_version_tag;
}

static void
forget_types(void)
{
    for (int i = 0; i < TYPE_CACHE; i++) {
        Py_CLEAR(type_cache[i].sizeof_);
        type_cache[i].tp = NULL;
        type_cache[i].tag = 0;
    }
}

/* The entry for ``tp``: from the cache, or read from the tables and cached (NULL: not
 * on the tables, or an error, cleared: the caller hands the call to Python). */
static TypeEntry *
type_entry(PyTypeObject *tp)
{
    unsigned int tag = type_tag(tp);
    TypeEntry *e = &type_cache[((uintptr_t)tp >> 4) % TYPE_CACHE];
    if (tag != 0 && e->tp == tp && e->tag == tag) {
        return e;
    }
    PyObject *ft = PyDict_GetItemWithError(S_static, (PyObject *)tp);  /* borrowed */
    if (ft == NULL) {
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return NULL;
        }
        PyObject *key = PyLong_FromVoidPtr(tp);
        if (key == NULL) {
            PyErr_Clear();
            return NULL;
        }
        ft = PyDict_GetItemWithError(S_fast, key);
        Py_DECREF(key);
        if (ft == NULL) {
            PyErr_Clear();
            return NULL;
        }
    }
    if (!PyTuple_CheckExact(ft) || PyTuple_GET_SIZE(ft) != 5) {
        return NULL;
    }
    static TypeEntry fresh;  /* an uncached answer (no tag yet): valid until the next call */
    TypeEntry *into = tag != 0 ? e : &fresh;
    long long ti = PyLong_AsLongLong(PyTuple_GET_ITEM(ft, 0));
    long long extra = PyLong_AsLongLong(PyTuple_GET_ITEM(ft, 2));
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *sz = PyTuple_GET_ITEM(ft, 1);
    Py_INCREF(sz);
    Py_XSETREF_LOCAL(into->sizeof_, sz);
    into->tp = tp;
    into->tag = tag;
    into->ti = ti;
    into->extra = extra;
    into->scalar = PyTuple_GET_ITEM(ft, 3) == Py_True;
    into->immutable = PyTuple_GET_ITEM(ft, 4) == Py_True;
    into->direct = NULL;
    if (Py_IS_TYPE(sz, &PyMethodDescr_Type)) {
        PyMethodDef *d = ((PyMethodDescrObject *)sz)->d_method;
        if ((d->ml_flags & (METH_VARARGS | METH_FASTCALL | METH_NOARGS | METH_O
                            | METH_KEYWORDS)) == METH_NOARGS
            && PyType_IsSubtype(tp, PyDescr_TYPE(sz))) {
            into->direct = d->ml_meth;
        }
    }
    return into;
}

/* The fast path shared by bind and enter: record ``value`` bound at global site ``s``
 * in instance ``tok`` at time ``t`` (0: now). DONE: recorded or rightly skipped;
 * TO_PYTHON: nothing done that the Python bind would not do again (the caller hands
 * the call over); FAILED: an exception from Python code run after the row was
 * written, which the caller must pass on. */
static int
bind_core(Py_ssize_t s, PyObject *value, PyObject *tok, int64_t t)
{
    int ok = 1;
    if (s < 0 || s >= PyList_GET_SIZE(S_bound) || !PyLong_CheckExact(tok)) {
        return TO_PYTHON;
    }
    long r = list_long(S_rate, s, &ok);
    if (!ok) {
        return TO_PYTHON;
    }
    if ((intptr_t)value < 0) {
        return TO_PYTHON;  /* an id() that a signed word would not hold */
    }
    PyTypeObject *tp = Py_TYPE(value);
    int scalar_type = (tp == &PyLong_Type || tp == &PyFloat_Type || tp == &PyBool_Type
                       || value == Py_None);
    if (r) {
        if (r < 0) {  /* switched off */
            if (list_set_long(S_bound, s, 1) < 0) {
                PyErr_Clear();
            }
            return DONE;
        }
        if (!scalar_type) {
            /* Python's _is_boring: a small immutable scalar of another type (a short
             * str, bytes) is counted as the scalars are, here (it went to Python's bind
             * each time: 3% of pyparsing's tests); anything else, or an error, is
             * Python's to decide (it stops the sampling) */
            TypeEntry *fe = type_entry(tp);
            if (fe == NULL || !fe->immutable) {
                return TO_PYTHON;
            }
            long long extra = fe->extra;
            PyObject *sz = fe->direct != NULL ? fe->direct(value, NULL)
                                              : PyObject_CallOneArg(fe->sizeof_, value);
            if (sz == NULL) {
                PyErr_Clear();
                return TO_PYTHON;
            }
            long long size = PyLong_AsLongLong(sz);
            Py_DECREF(sz);
            if (size == -1 && PyErr_Occurred()) {
                PyErr_Clear();
                return TO_PYTHON;
            }
            if (size + extra > S_small_bytes) {
                return TO_PYTHON;
            }
        }
        long n = list_long(S_count, s, &ok) + 1;
        if (!ok || n >= r) {
            return TO_PYTHON;  /* its turn: recorded and put to sleep by Python */
        }
        if (list_set_long(S_count, s, n) < 0 || list_set_long(S_bound, s, 1) < 0) {
            PyErr_Clear();
            return TO_PYTHON;
        }
        return DONE;
    }
    TypeEntry *ft = type_entry(tp);
    if (ft == NULL) {
        return TO_PYTHON;
    }
    /* everything the entry says, read before its __sizeof__ runs: a call may collect,
     * and code a collection runs (a finalizer's binds) may refill this cache slot (or
     * the uncached entry) with another type's */
    int scalar = ft->scalar, immutable = ft->immutable;
    long long extra = ft->extra, ti = ft->ti;
    if (S_full && !scalar) {
        return TO_PYTHON;  /* full mode's deep size: Python's bind */
    }
    /* its C __sizeof__, called directly when it is a plain method (as the descriptor
     * would call it: same function, same object) */
    PyObject *sz = ft->direct != NULL ? ft->direct(value, NULL)
                                      : PyObject_CallOneArg(ft->sizeof_, value);
    if (sz == NULL) {
        PyErr_Clear();
        return TO_PYTHON;  /* Python's bind records it unsized, with the error */
    }
    long long size = PyLong_AsLongLong(sz);
    Py_DECREF(sz);
    long long tk = PyLong_AsLongLong(tok);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return TO_PYTHON;
    }
    size += extra;
    if (list_set_long(S_bound, s, 1) < 0) {
        PyErr_Clear();
        return TO_PYTHON;
    }
    if (t == 0) {
        t = now_ns();
    }
    int64_t *row = buf_row(S_buf);
    if (row == NULL) {
        PyErr_Clear();
        return TO_PYTHON;
    }
    row[0] = K_BIND;
    row[1] = t;
    row[2] = (int64_t)s;
    row[3] = tk;
    row[4] = (int64_t)(intptr_t)value;
    row[5] = ti;
    row[6] = size;
    row[7] = size;
    if (S_full) {
        row[8] = row[9] = row[10] = -1;
    }
    buf_row_done(S_buf, S_full ? 11 : 7);
    if (immutable && size <= S_small_bytes) {  /* a small immutable scalar: may sample */
        long n = list_long(S_streak, s, &ok) + 1;
        /* counted up to the streak that starts sampling, not past it (nor from the
         * never-sampled value far below 0): what happens at the streak is the same, and
         * past 256 each count would be a new int object (--no-sampling, where sampling
         * never starts and the streak went on) */
        if (ok && n >= 0 && n <= S_scalar_streak) {
            if (list_set_long(S_streak, s, n) < 0) {
                PyErr_Clear();
            } else if (n == S_scalar_streak) {  /* Python's _start_sampling(s) */
                PyObject *sa = PyLong_FromSsize_t(s);
                PyObject *res = sa ? PyObject_CallOneArg(S_start_sampling, sa) : NULL;
                Py_XDECREF(sa);
                if (res == NULL) {
                    return FAILED;
                }
                Py_DECREF(res);
            }
        }
    }
    return DONE;
}

/* A call handed to the Python closure. Its frame may not start: at the deepest level of
 * the program's recursion, where plain Python has no call at all, that RecursionError is
 * ours, not the program's: the call is left unrecorded and ``instead`` returned, as the
 * closure would have swallowed it (a program's usable depth stays plain Python's).
 * Anything else the closure raises was decided by its own ``_CATCH``: passed on. */
static PyObject *
call_python(PyObject *fn, PyObject *const *args, Py_ssize_t nargs, PyObject *instead)
{
    PyObject *r = PyObject_Vectorcall(fn, args, (size_t)nargs, NULL);
    if (r == NULL && PyErr_ExceptionMatches(PyExc_RecursionError)) {
        PyErr_Clear();
        return Py_NewRef(instead);
    }
#if PY_VERSION_HEX < 0x030B0000
    if (r == NULL) {
        /* 3.10: the closure's bare ``raise`` re-raised the exception with the traceback
         * its ``except`` caught (our frames), not the one ``_CATCH`` gave it (from a
         * signal handler's frame on, or none): the program gets the exception's own */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (value != NULL) {
            Py_XSETREF_LOCAL(tb, PyException_GetTraceback(value));
        }
        PyErr_Restore(type, value, tb);
    }
#endif
    return r;
}

/* bind(site, value, tok, /) -> value */
static PyObject *
Sites_bind(Sites *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !S_ready) {
        return call_python(self->py_bind, args, nargs, nargs > 1 ? args[1] : Py_None);
    }
    PyObject *value = args[1], *tok = args[2];
    if (tok == Py_None) {
        return Py_NewRef(value);
    }
    Py_ssize_t site = PyLong_AsSsize_t(args[0]);
    if (site == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return call_python(self->py_bind, args, nargs, nargs > 1 ? args[1] : Py_None);
    }
    int res = bind_core(self->base + site, value, tok, 0);
    if (res == TO_PYTHON) {
        return call_python(self->py_bind, args, nargs, nargs > 1 ? args[1] : Py_None);
    }
    if ((res == FAILED && hand_to_catch(where_bind) < 0) || maybe_flush(where_bind) < 0) {
        return NULL;
    }
    return Py_NewRef(value);
}

/* The Python bind, for what bind_core handed over: ``site`` within the module. DONE, or
 * RAISED with the exception its own ``_CATCH`` decided to pass on (an interrupt). */
static int
py_bind_at(Sites *self, Py_ssize_t site, PyObject *value, PyObject *tok)
{
    PyObject *num = PyLong_FromSsize_t(site);
    if (num == NULL) {
        PyErr_Clear();
        return DONE;  /* (no memory for an int: the bind is left unrecorded) */
    }
    PyObject *bargs[3] = {num, value, tok};
    PyObject *r = call_python(self->py_bind, bargs, 3, Py_None);
    Py_DECREF(num);
    if (r == NULL) {
        return RAISED;
    }
    Py_DECREF(r);
    return DONE;
}

/* bind_group(first, values, tok, /): the names of sites first, first + 1, ... were
 * bound, behind one guard. A group seen for the first time, and anything bind_core
 * hands over, goes to Python; a member that sleeps is skipped, as in Python. */
static PyObject *
Sites_bind_group(Sites *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !S_ready || !PyTuple_CheckExact(args[1])) {
        return call_python(self->py_bind_group, args, nargs, Py_None);
    }
    PyObject *values = args[1], *tok = args[2];
    if (tok == Py_None) {
        Py_RETURN_NONE;
    }
    Py_ssize_t first = PyLong_AsSsize_t(args[0]);
    if (first == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return call_python(self->py_bind_group, args, nargs, Py_None);
    }
    Py_ssize_t s = self->base + first;
    PyObject *key = PyLong_FromSsize_t(s);
    int known = key == NULL ? -1 : PyDict_Contains(S_group_n, key);
    Py_XDECREF(key);
    if (known != 1) {  /* its first time (Python notes the group), or an error */
        PyErr_Clear();
        return call_python(self->py_bind_group, args, nargs, Py_None);
    }
    Py_ssize_t k = PyTuple_GET_SIZE(values);
    int64_t t = 0;  /* one time for the group's rows, as enter's parameters share one */
    for (Py_ssize_t i = 0; i < k; i++) {
        int ok = 1;
        if (list_long(S_asleep, s + i, &ok) || !ok) {
            continue;  /* asleep until the re-arm (or not a site: Python skipped it too) */
        }
        PyObject *v = PyTuple_GET_ITEM(values, i);
        if (t == 0) {
            t = now_ns();
        }
        int res = bind_core(s + i, v, tok, t);
        if (res == TO_PYTHON) {
            res = py_bind_at(self, first + i, v, tok);
            t = 0;  /* the members after it: not before its row */
        }
        if (res == RAISED || (res == FAILED && hand_to_catch(where_bind_group) < 0)) {
            return NULL;
        }
    }
    if (maybe_flush(where_bind_group) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* bind_attr(site, obj, attr, tok, /): ``obj.attr = v`` ran. The value is read as the
 * Python bind_attr reads it, through the type's plan (``_hooks._attr_plan``) when one is
 * made and still holds: a ``__slots__`` member by its C descriptor, an attribute the
 * instance holds itself by the generic lookup (no user code runs either way). No plan,
 * a plan to remake, nothing readable, or any error: the whole call goes to Python. */
static PyObject *
Sites_bind_attr(Sites *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !S_ready || !PyUnicode_CheckExact(args[2])) {
        return call_python(self->py_bind_attr, args, nargs, Py_None);
    }
    PyObject *obj = args[1], *attr = args[2], *tok = args[3];
    if (tok == Py_None) {
        Py_RETURN_NONE;
    }
    PyTypeObject *tp = Py_TYPE(obj);
    /* the key (id(type), attr) with nothing made for it: the id of the last type asked
     * for is kept (an int of the address: right for whatever type has it), and the key
     * is one tuple of ours, untracked, never stored (a lookup only hashes and compares
     * it: ints and strs, no Python code), its items set for the lookup and cleared after
     * (an int and a tuple made and freed at each read were 10-20% of its time) */
    if (tp != plan_tp || plan_tid == NULL) {
        PyObject *tid = PyLong_FromVoidPtr(tp);
        if (tid == NULL) {
            PyErr_Clear();
            return call_python(self->py_bind_attr, args, nargs, Py_None);
        }
        Py_XSETREF_LOCAL(plan_tid, tid);
        plan_tp = tp;
    }
    if (plan_key == NULL) {
        plan_key = PyTuple_New(2);
        if (plan_key == NULL) {
            PyErr_Clear();
            return call_python(self->py_bind_attr, args, nargs, Py_None);
        }
        PyObject_GC_UnTrack(plan_key);
    }
    PyTuple_SET_ITEM(plan_key, 0, plan_tid);  /* borrowed for the lookup */
    PyTuple_SET_ITEM(plan_key, 1, attr);
    PyObject *plan = PyDict_GetItemWithError(S_plans, plan_key);  /* borrowed */
    PyTuple_SET_ITEM(plan_key, 0, NULL);
    PyTuple_SET_ITEM(plan_key, 1, NULL);
    if (plan == NULL || !PyTuple_CheckExact(plan) || PyTuple_GET_SIZE(plan) != 3
        || PyTuple_GET_ITEM(plan, 0) == Py_None) {
        PyErr_Clear();
        return call_python(self->py_bind_attr, args, nargs, Py_None);
    }
    Py_INCREF(plan);  /* a callback run below may drop it from the table */
    PyObject *value = NULL;
    PyObject *alive = PyObject_CallNoArgs(PyTuple_GET_ITEM(plan, 0));  /* the type? */
    long how = PyLong_AsLong(PyTuple_GET_ITEM(plan, 1));
    if (alive != (PyObject *)tp || PyErr_Occurred()) {
        goto to_python;
    }
    if (how == 1) {  /* a __slots__ member: the descriptor's bound __get__(obj, tp) */
        PyObject *gargs[2] = {obj, (PyObject *)tp};
        value = PyObject_Vectorcall(PyTuple_GET_ITEM(plan, 2), gargs, 2, NULL);
    } else if (how == 2) {  /* the instance's own: the classes still as planned? */
        PyObject *seen = PyTuple_GET_ITEM(plan, 2);
        if (!PyTuple_CheckExact(seen)) {
            goto to_python;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(seen); i++) {
            PyObject *pair = PyTuple_GET_ITEM(seen, i);
            if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
                goto to_python;
            }
            PyObject *ns = PyTuple_GET_ITEM(pair, 0), *now;
            if (PyDict_CheckExact(ns)) {  /* the class's own dict (_hooks._namespace): */
                now = PyDict_GetItemWithError(ns, attr);  /* no KeyError made if absent */
                if (now == NULL && PyErr_Occurred()) {
                    goto to_python;
                }
                Py_XINCREF(now);
            } else {
                now = PyObject_GetItem(ns, attr);
                if (now == NULL) {
                    if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                        goto to_python;
                    }
                    PyErr_Clear();
                }
            }
            PyObject *was_id = PyTuple_GET_ITEM(pair, 1);
            void *was = PyLong_AsVoidPtr(was_id);
            if (now == NULL) {
                /* nothing there now: the plan holds if nothing was there then (the
                 * plan holds the id of _hooks._MISSING for that) */
                if (was != (void *)S_missing) {
                    goto to_python;
                }
                continue;
            }
            Py_DECREF(now);
            if ((void *)now != was) {
                goto to_python;  /* a class changed under the plan: Python remakes it */
            }
        }
        value = PyObject_GenericGetAttr(obj, attr);
        if (value == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
            goto to_python;  /* not set: Python counts it unread */
        }
    } else {
        goto to_python;  /* nothing readable without user code: Python counts it */
    }
    if (value == NULL) {
        goto to_python;
    }
    Py_XDECREF(alive);
    Py_DECREF(plan);
    Py_ssize_t site = PyLong_AsSsize_t(args[0]);
    if (site == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        Py_DECREF(value);
        return call_python(self->py_bind_attr, args, nargs, Py_None);
    }
    int res = bind_core(self->base + site, value, tok, 0);
    if (res == TO_PYTHON) {
        res = py_bind_at(self, site, value, tok);
    }
    Py_DECREF(value);
    if (res == RAISED || (res == FAILED && hand_to_catch(where_bind_attr) < 0)
        || maybe_flush(where_bind_attr) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;

to_python:
    PyErr_Clear();
    Py_XDECREF(alive);
    Py_DECREF(plan);
    return call_python(self->py_bind_attr, args, nargs, Py_None);
}

/* unbind(site, tok, /) */
static PyObject *
Sites_unbind(Sites *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !S_ready) {
        PyErr_SetString(PyExc_TypeError, "unbind(site, tok)");
        return NULL;
    }
    PyObject *tok = args[1];
    if (tok == Py_None || !PyLong_CheckExact(tok)) {
        Py_RETURN_NONE;
    }
    int ok = 1;
    Py_ssize_t s = self->base + PyLong_AsSsize_t(args[0]);
    long r = list_long(S_rate, s, &ok);
    long long tk = PyLong_AsLongLong(tok);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (ok && r >= 0) {
        int64_t t = now_ns();
        int64_t *row = buf_row(S_buf);
        if (row == NULL) {
            PyErr_Clear();
        } else {
            row[0] = K_UNBIND;
            row[1] = t;
            row[2] = (int64_t)s;
            row[3] = tk;
            buf_row_done(S_buf, 4);
        }
    }
    Py_RETURN_NONE;
}

/* exit(tok, /) */
static PyObject *
Sites_exit(Sites *self, PyObject *tok)
{
    if (tok == Py_None) {
        Py_RETURN_NONE;
    }
    if (S_ready && PyLong_CheckExact(tok)) {
        long long tk = PyLong_AsLongLong(tok);
        if (!(tk == -1 && PyErr_Occurred())) {
            int64_t t = now_ns();
            int64_t *row = buf_row(S_buf);
            if (row == NULL) {
                PyErr_Clear();
            } else {
                row[0] = K_EXIT;
                row[1] = t;
                row[2] = tk;
                buf_row_done(S_buf, 3);
            }
            Py_RETURN_NONE;
        }
        PyErr_Clear();
    }
    Py_RETURN_NONE;
}

/* enter(scope, first_param, *params) -> token or None */
static PyObject *
Sites_enter(Sites *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || !S_ready) {
        return call_python(self->py_enter, args, nargs, Py_None);
    }
    /* no room for one more call at this depth: the instance is not recorded (its
     * token None), so that its scope's end calls nothing (``tok and exit(tok)``) where
     * a call would raise RecursionError and plain Python has room (3.10 and 3.11 count
     * calls of C functions in the recursion limit) */
    if (Py_EnterRecursiveCall(" (memscope)")) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_LeaveRecursiveCall();
    Py_ssize_t scope = PyLong_AsSsize_t(args[0]);
    Py_ssize_t first = PyLong_AsSsize_t(args[1]);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return call_python(self->py_enter, args, nargs, Py_None);
    }
    Py_ssize_t sc = self->sbase + scope;
    int ok = 1;
    long n = list_long(S_entered, sc, &ok) + 1;
    if (!ok || n % S_scope_streak == 0 || scope < 0) {
        /* the sleep check's turn (or a scope we do not know): all of it in Python */
        return call_python(self->py_enter, args, nargs, Py_None);
    }
    /* past this point the instance is ours: no handing over (it would count twice) */
    if (list_set_long(S_entered, sc, n) < 0) {
        PyErr_Clear();
        return call_python(self->py_enter, args, nargs, Py_None);
    }
    PyObject *tok = PyLong_FromLongLong(++S_tok);
    if (tok == NULL) {
        goto fail_none;
    }
    /* the thread's ident, kept in its thread state's dict (a new thread, even one that
     * reuses an ident, has a new one): the first scope of a thread asks Python, which
     * records the THREAD row */
    PyThreadState *ts = PyThreadState_Get();
    uint64_t tsid = PyThreadState_GetID(ts);
    PyObject *tdict = NULL, *ident = NULL;
    if (ts == last_ts && tsid == last_tsid && last_ident != NULL) {
        ident = Py_NewRef(last_ident);  /* the thread of the last scope, again */
    } else {
        tdict = PyThreadState_GetDict();  /* borrowed; NULL: none */
        ident = tdict ? PyDict_GetItemWithError(tdict, str_tkey) : NULL;
        Py_XINCREF(ident);
    }
    if (ident == NULL) {
        if (PyErr_Occurred()) {
            Py_DECREF(tok);
            goto fail_none;
        }
        ident = PyObject_CallNoArgs(S_thread_ident);
        if (ident == NULL) {
            Py_DECREF(tok);
            goto fail_none;
        }
        if (tdict != NULL && PyDict_SetItem(tdict, str_tkey, ident) < 0) {
            PyErr_Clear();
        }
    }
    if (ts != last_ts || tsid != last_tsid || ident != last_ident) {
        /* a thread state is told by its address and its id, which no other thread state
         * of the process is given, even at the same address */
        last_ts = ts;
        last_tsid = tsid;
        Py_XSETREF_LOCAL(last_ident, Py_NewRef(ident));
    }
    int64_t t = now_ns();
    long long task = 0;
    PyObject *grl = PyDict_GetItemWithError(S_globals, str_get_running_loop);
    int aio = (grl != NULL && grl != Py_None);
    if (!aio && !PyErr_Occurred()) {
        aio = PyDict_Contains(S_modules, str_asyncio) == 1;
    }
    PyErr_Clear();
    if (aio) {
        PyObject *k = PyObject_CallNoArgs(S_task_key);
        if (k == NULL) {
            Py_DECREF(tok);
            Py_DECREF(ident);
            goto fail_none;
        }
        task = PyLong_AsLongLong(k);
        Py_DECREF(k);
        if (task == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            task = 0;
        }
    }
    int ov1 = 0, ov2 = 0, pushed;
    long long tk = PyLong_AsLongLongAndOverflow(tok, &ov1);
    long long id = PyLong_AsLongLongAndOverflow(ident, &ov2);
    if (!ov1 && !ov2 && !PyErr_Occurred()) {
        int64_t *row = buf_row(S_buf);
        pushed = row == NULL ? -1 : 0;
        if (row != NULL) {
            row[0] = K_ENTER;
            row[1] = t;
            row[2] = (int64_t)sc;
            row[3] = tk;
            row[4] = id;
            row[5] = task;
            buf_row_done(S_buf, 6);
        }
    } else {  /* a number a word does not hold: the row as an object */
        PyErr_Clear();
        PyObject *ev = Py_BuildValue("(LLnOOL)", (long long)K_ENTER, (long long)t, sc, tok,
                                     ident, task);
        pushed = ev == NULL ? -1 : buf_push(S_buf, ev);
        Py_XDECREF(ev);
    }
    Py_DECREF(ident);
    if (pushed < 0) {
        Py_DECREF(tok);
        goto fail_none;
    }
    /* the token is returned from here on, whatever happens to a parameter's row */
    for (Py_ssize_t i = 2; i < nargs; i++) {
        Py_ssize_t s = self->base + first + (i - 2);
        int res = bind_core(s, args[i], tok, t);
        if (res == TO_PYTHON) {
            res = py_bind_at(self, s - self->base, args[i], tok);
            t = now_ns();  /* the parameters after it: not before its event */
        }
        if (res == DONE) {
            continue;
        }
        /* RAISED: the Python bind's _CATCH sent the interrupt on: so does enter (as the
         * Python enter would, deciding once); FAILED (_start_sampling): _CATCH decides */
        if (res == RAISED || hand_to_catch(where_enter) < 0) {
            Py_DECREF(tok);
            return NULL;
        }
    }
    if (maybe_flush(where_enter) < 0) {
        Py_DECREF(tok);
        return NULL;
    }
    return tok;

fail_none:  /* no ENTER written: the instance is not recorded, as in Python */
    if (hand_to_catch(where_enter) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Sites_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Py_ssize_t base, sbase;
    PyObject *py_bind, *py_enter, *py_bind_group, *py_bind_attr;
    if ((kwds != NULL && PyDict_GET_SIZE(kwds))
        || !PyArg_ParseTuple(args, "nnOOOO:Sites", &base, &sbase, &py_bind,
                             &py_enter, &py_bind_group, &py_bind_attr)) {
        return NULL;
    }
    Sites *self = (Sites *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->base = base;
    self->sbase = sbase;
    self->py_bind = Py_NewRef(py_bind);
    self->py_enter = Py_NewRef(py_enter);
    self->py_bind_group = Py_NewRef(py_bind_group);
    self->py_bind_attr = Py_NewRef(py_bind_attr);
    return (PyObject *)self;
}

static void
Sites_dealloc(Sites *self)
{
    Py_XDECREF(self->py_bind);
    Py_XDECREF(self->py_enter);
    Py_XDECREF(self->py_bind_group);
    Py_XDECREF(self->py_bind_attr);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Sites_methods[] = {
    {"bind", (PyCFunction)(void (*)(void))Sites_bind, METH_FASTCALL,
     "bind($self, site, value, tok, /)\n--\n\nThe name of ``site`` was bound to ``value``."},
    {"bind_group", (PyCFunction)(void (*)(void))Sites_bind_group, METH_FASTCALL,
     "bind_group($self, first, values, tok, /)\n--\n\nThe names of sites first, ... were bound."},
    {"bind_attr", (PyCFunction)(void (*)(void))Sites_bind_attr, METH_FASTCALL,
     "bind_attr($self, site, obj, attr, tok, /)\n--\n\n``obj.attr = v`` ran."},
    {"unbind", (PyCFunction)(void (*)(void))Sites_unbind, METH_FASTCALL,
     "unbind($self, site, tok, /)\n--\n\n``del name``, or the end of ``except ... as name``."},
    {"exit", (PyCFunction)Sites_exit, METH_O,
     "exit($self, tok, /)\n--\n\nThe instance ended."},
    {"enter", (PyCFunction)(void (*)(void))Sites_enter, METH_FASTCALL,
     "enter($self, scope, first_param, /, *params)\n--\n\nA scope instance starts."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SitesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "memscope._hotpath.Sites",
    .tp_doc = "One instrumented module's sites and scopes: the C side of its handle.",
    .tp_basicsize = sizeof(Sites),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Sites_new,
    .tp_dealloc = (destructor)Sites_dealloc,
    .tp_methods = Sites_methods,
};

/* ---- set-up --------------------------------------------------------------------- */

static int
take(PyObject *kw, const char *name, PyObject **into)
{
    PyObject *v = PyDict_GetItemString(kw, name);
    if (v == NULL) {
        PyErr_Format(PyExc_TypeError, "setup: %s missing", name);
        return -1;
    }
    PyObject *old = *into;
    *into = Py_NewRef(v);
    Py_XDECREF(old);
    return 0;
}

static int
take_long(PyObject *kw, const char *name, long *into)
{
    PyObject *v = PyDict_GetItemString(kw, name);
    if (v == NULL) {
        PyErr_Format(PyExc_TypeError, "setup: %s missing", name);
        return -1;
    }
    long x = PyLong_AsLong(v);
    if (x == -1 && PyErr_Occurred()) {
        return -1;
    }
    *into = x;
    return 0;
}

/* setup(**state): the shared lists, tables and callables of memscope._hooks. */
static PyObject *
hot_setup(PyObject *mod, PyObject *args, PyObject *kw)
{
    PyObject *buf = NULL;
    long kb, ke, kx, ku;
    if (PyTuple_GET_SIZE(args) || kw == NULL) {
        PyErr_SetString(PyExc_TypeError, "setup takes keyword arguments only");
        return NULL;
    }
    if (take(kw, "buffer", &buf) < 0) {
        return NULL;
    }
    if (!PyObject_TypeCheck(buf, &BufferType)) {
        Py_DECREF(buf);
        PyErr_SetString(PyExc_TypeError, "setup: buffer must be a _hotpath.Buffer");
        return NULL;
    }
    Py_XDECREF(S_buf);
    S_buf = (Buffer *)buf;
    if (take(kw, "rate", &S_rate) < 0 || take(kw, "count", &S_count) < 0
        || take(kw, "streak", &S_streak) < 0 || take(kw, "bound", &S_bound) < 0
        || take(kw, "entered", &S_entered) < 0 || take(kw, "asleep", &S_asleep) < 0
        || take(kw, "group_n", &S_group_n) < 0 || take(kw, "attr_plans", &S_plans) < 0
        || take(kw, "missing", &S_missing) < 0 || take(kw, "static_types", &S_static) < 0
        || take(kw, "fast_types", &S_fast) < 0 || take(kw, "flush", &S_flush) < 0
        || take(kw, "start_sampling", &S_start_sampling) < 0
        || take(kw, "thread_ident", &S_thread_ident) < 0
        || take(kw, "task_key", &S_task_key) < 0 || take(kw, "catch", &S_catch) < 0
        || take(kw, "globals", &S_globals) < 0 || take(kw, "modules", &S_modules) < 0
        || take_long(kw, "scope_streak", &S_scope_streak) < 0
        || take_long(kw, "small_bytes", &S_small_bytes) < 0
        || take_long(kw, "scalar_streak", &S_scalar_streak) < 0
        || take_long(kw, "BIND", &kb) < 0 || take_long(kw, "ENTER", &ke) < 0
        || take_long(kw, "EXIT", &kx) < 0 || take_long(kw, "UNBIND", &ku) < 0) {
        return NULL;
    }
    if (!PyList_CheckExact(S_rate) || !PyList_CheckExact(S_count)
        || !PyList_CheckExact(S_streak) || !PyList_CheckExact(S_bound)
        || !PyList_CheckExact(S_entered) || !PyList_CheckExact(S_asleep)
        || !PyDict_CheckExact(S_group_n) || !PyDict_CheckExact(S_plans)
        || !PyDict_CheckExact(S_static)
        || !PyDict_CheckExact(S_fast) || !PyDict_CheckExact(S_globals)
        || !PyDict_CheckExact(S_modules) || S_scope_streak <= 0) {
        PyErr_SetString(PyExc_TypeError, "setup: wrong kind of state");
        return NULL;
    }
    K_BIND = kb;
    K_ENTER = ke;
    K_EXIT = kx;
    K_UNBIND = ku;
    S_ready = 1;
    Py_RETURN_NONE;
}

/* set_mode(full, flush_at): configure()'s settings */
static PyObject *
hot_set_mode(PyObject *mod, PyObject *args)
{
    int full;
    Py_ssize_t flush_at;
    if (!PyArg_ParseTuple(args, "pn:set_mode", &full, &flush_at)) {
        return NULL;
    }
    S_full = full;
    S_flush_at = flush_at < 1 ? 1 : flush_at;
    Py_RETURN_NONE;
}

/* next_token(): a fresh token (shared by the C and Python entry points, and by the
 * leak check's polls, which use it as a clock) */
static PyObject *
hot_next_token(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(++S_tok);
}

/* forget_thread(): the calling thread is a new one (a forked child's only thread) */
static PyObject *
hot_forget_thread(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    PyObject *tdict = PyThreadState_GetDict();
    if (tdict != NULL && PyDict_DelItem(tdict, str_tkey) < 0) {
        PyErr_Clear();
    }
    last_ts = NULL;
    last_tsid = 0;
    Py_CLEAR(last_ident);
    Py_RETURN_NONE;
}

static PyObject *
hot_forget_types(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    forget_types();
    Py_RETURN_NONE;
}

/* planes(raw, start, step, n) -> (mask, parts): memscope.planes.planes in one pass. */
static PyObject *
hot_planes(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "planes(raw: bytes, start, step, n)");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    Py_ssize_t step = PyLong_AsSsize_t(args[2]);
    Py_ssize_t n = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t len = PyBytes_GET_SIZE(args[0]);
    if (n < 1 || step < 8 || start < 0 || start + 7 + (n - 1) * step >= len) {
        PyErr_SetString(PyExc_IndexError, "planes: out of range");
        return NULL;
    }
    const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(args[0]) + start;
    /* pass 1: which bytes differ from the first value's anywhere (one 64-bit load per
     * value); pass 2 copies out only those planes (small numbers differ in a few low
     * bytes: the others are stored as one byte) */
    uint64_t first, v, acc = 0;
    memcpy(&first, raw, 8);
    for (Py_ssize_t i = 1; i < n; i++) {
        memcpy(&v, raw + i * step, 8);
        acc |= v ^ first;
    }
    PyObject *parts = PyList_New(8);
    if (parts == NULL) {
        return NULL;
    }
    int mask = 0;
    for (int b = 0; b < 8; b++) {  /* little-endian: byte b of the value in memory */
        int differs = PY_LITTLE_ENDIAN ? ((acc >> (8 * b)) & 0xFF) != 0 : 1;
        PyObject *part;
        if (!differs) {
            part = PyBytes_FromStringAndSize((const char *)raw + b, 1);
        } else {
            part = PyBytes_FromStringAndSize(NULL, n);
            if (part != NULL) {
                unsigned char *out = (unsigned char *)PyBytes_AS_STRING(part);
                const unsigned char *src = raw + b;
                int same = 1;
                for (Py_ssize_t i = 0; i < n; i++) {
                    out[i] = src[i * step];
                    same &= out[i] == src[0];
                }
                if (same) {  /* (only where the byte order made us look) */
                    Py_DECREF(part);
                    part = PyBytes_FromStringAndSize((const char *)raw + b, 1);
                    differs = 0;
                }
            }
        }
        if (part == NULL) {
            Py_DECREF(parts);
            return NULL;
        }
        mask |= differs << b;
        PyList_SET_ITEM(parts, b, part);
    }
    return Py_BuildValue("(iN)", mask, parts);
}

/* frame_slots(frame, frame_ptr_at, locals_at, n, unbound) -> tuple: the objects in
 * the first n slots of a frame's localsplus (``unbound`` for an empty slot), for
 * ``memscope.frames`` (the census reads other threads' frames). Read in one go, with
 * the GIL held and nothing allocated between reading the frame's pointer and taking a
 * reference to each object: the thread that runs the frame cannot return from it or
 * rebind a name meanwhile (read slot by slot from Python, a thread switch between two
 * reads left stale addresses: a crash in pyparsing's suite). */
static PyObject *
hot_frame_slots(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "frame_slots(frame, frame_ptr_at, locals_at, n, unbound)");
        return NULL;
    }
    Py_ssize_t frame_ptr_at = PyLong_AsSsize_t(args[1]);
    Py_ssize_t locals_at = PyLong_AsSsize_t(args[2]);
    Py_ssize_t n = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (n < 0 || locals_at < 0) {
        PyErr_SetString(PyExc_ValueError, "frame_slots: bad layout");
        return NULL;
    }
    PyObject *out = PyTuple_New(n);  /* first: an allocation may run a collection */
    if (out == NULL) {
        return NULL;
    }
    char *base = (char *)args[0];
    if (frame_ptr_at >= 0) {
        base = *(char **)(base + frame_ptr_at);
    }
    if (base == NULL) {
        for (Py_ssize_t i = 0; i < n; i++) {
            PyTuple_SET_ITEM(out, i, Py_NewRef(args[4]));
        }
        return out;
    }
    PyObject **slots = (PyObject **)(base + locals_at);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = slots[i];
        PyTuple_SET_ITEM(out, i, Py_NewRef(o != NULL ? o : args[4]));
    }
    return out;
}

/* frame_addresses(frame, frame_ptr_at, locals_at, start, stop) -> list: the words in
 * slots start..stop-1 of a frame's localsplus (its locals, then its value stack) that
 * are not 0, as ints (addresses: none is made into an object; a slot above the stack's
 * top may name an object gone). The frame's pointer and every slot are read in one go,
 * before anything is allocated: read word by word from Python (ctypes), another thread
 * could run between two reads, return from the frame and pop its data stack chunk, and
 * the next read touched memory given back to the system (a segmentation fault in the
 * census, pyparsing's suite: the main thread deep in its recursive parse, which grows
 * and shrinks the data stack by chunks). */
static PyObject *
hot_frame_addresses(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyFrame_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError,
                        "frame_addresses(frame, frame_ptr_at, locals_at, start, stop)");
        return NULL;
    }
    Py_ssize_t frame_ptr_at = PyLong_AsSsize_t(args[1]);
    Py_ssize_t locals_at = PyLong_AsSsize_t(args[2]);
    Py_ssize_t start = PyLong_AsSsize_t(args[3]);
    Py_ssize_t stop = PyLong_AsSsize_t(args[4]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (locals_at < 0 || start < 0 || stop < start) {
        PyErr_SetString(PyExc_ValueError, "frame_addresses: bad layout");
        return NULL;
    }
    Py_ssize_t n = stop - start;
    uintptr_t *words = (uintptr_t *)malloc((size_t)(n ? n : 1) * sizeof(uintptr_t));
    if (words == NULL) {
        return PyErr_NoMemory();
    }
    /* no Python code, no allocation from here to the last slot read */
    char *base = (char *)args[0];
    if (frame_ptr_at >= 0) {
        base = *(char **)(base + frame_ptr_at);
    }
    Py_ssize_t k = 0;
    if (base != NULL) {
        const uintptr_t *slots = (const uintptr_t *)(base + locals_at);
        for (Py_ssize_t i = start; i < stop; i++) {
            uintptr_t w = slots[i];
            if (w != 0) {
                words[k++] = w;
            }
        }
    }
    PyObject *out = PyList_New(k);  /* (may collect: the words are copied already) */
    for (Py_ssize_t i = 0; out != NULL && i < k; i++) {
        PyObject *v = PyLong_FromVoidPtr((void *)words[i]);
        if (v == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, v);
    }
    free(words);
    return out;
}

/* frame_dict(frame, frame_ptr_at, dict_at) -> object | None: what the frame's f_locals
 * slot holds (the dict an earlier locals() left there), a new reference taken the moment
 * the pointer is read (from Python, the frame's pointer, the slot and the object were
 * three reads another thread could run between: a dict freed meanwhile, or a chunk). */
static PyObject *
hot_frame_dict(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyFrame_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "frame_dict(frame, frame_ptr_at, dict_at)");
        return NULL;
    }
    Py_ssize_t frame_ptr_at = PyLong_AsSsize_t(args[1]);
    Py_ssize_t dict_at = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (dict_at < 0) {
        PyErr_SetString(PyExc_ValueError, "frame_dict: bad layout");
        return NULL;
    }
    char *base = (char *)args[0];
    if (frame_ptr_at >= 0) {
        base = *(char **)(base + frame_ptr_at);
    }
    PyObject *d = base != NULL ? *(PyObject **)(base + dict_at) : NULL;
    return Py_NewRef(d != NULL ? d : Py_None);
}

static PyMethodDef hot_methods[] = {
    {"frame_slots", (PyCFunction)(void (*)(void))hot_frame_slots, METH_FASTCALL,
     "frame_slots(frame, frame_ptr_at, locals_at, n, unbound, /)\n--\n\n"
     "A frame's first n localsplus objects, read in one go."},
    {"frame_addresses", (PyCFunction)(void (*)(void))hot_frame_addresses, METH_FASTCALL,
     "frame_addresses(frame, frame_ptr_at, locals_at, start, stop, /)\n--\n\n"
     "The non-zero words of a frame's localsplus slots start..stop-1, read in one go."},
    {"frame_dict", (PyCFunction)(void (*)(void))hot_frame_dict, METH_FASTCALL,
     "frame_dict(frame, frame_ptr_at, dict_at, /)\n--\n\n"
     "What the frame's f_locals slot holds (None: nothing), read in one go."},
    {"next_token", hot_next_token, METH_NOARGS,
     "next_token()\n--\n\nA fresh scope-instance token."},
    {"forget_thread", hot_forget_thread, METH_NOARGS,
     "forget_thread()\n--\n\nThe calling thread is a new one (after fork)."},
    {"forget_types", hot_forget_types, METH_NOARGS,
     "forget_types()\n--\n\nThe fast-type tables changed: empty the C cache of them."},
    {"planes", (PyCFunction)(void (*)(void))hot_planes, METH_FASTCALL,
     "planes(raw, start, step, n, /)\n--\n\nThe byte planes of n int64 values (memscope.planes)."},
    {"setup", (PyCFunction)(void (*)(void))hot_setup, METH_VARARGS | METH_KEYWORDS,
     "setup(**state)\n--\n\nThe shared state of memscope._hooks."},
    {"set_mode", hot_set_mode, METH_VARARGS,
     "set_mode(full, flush_at, /)\n--\n\nFull mode or not; the buffer's flush size."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef hot_module = {
    PyModuleDef_HEAD_INIT, "memscope._hotpath",
    "memscope's hot path in C: the event buffer and the common case of each call.", -1,
    hot_methods,
};

PyMODINIT_FUNC
PyInit__hotpath(void)
{
    if (PyType_Ready(&BufferType) < 0 || PyType_Ready(&SitesType) < 0
        || PyType_Ready(&BatchType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&hot_module);
    if (m == NULL) {
        return NULL;
    }
    str_tkey = PyUnicode_InternFromString("memscope._hotpath.ident");
    str_get_running_loop = PyUnicode_InternFromString("_get_running_loop");
    str_asyncio = PyUnicode_InternFromString("asyncio");
    where_bind = PyUnicode_InternFromString("bind");
    where_enter = PyUnicode_InternFromString("enter");
    where_bind_group = PyUnicode_InternFromString("bind_group");
    where_bind_attr = PyUnicode_InternFromString("bind_attr");
    if (!str_tkey || !str_get_running_loop || !str_asyncio || !where_bind || !where_enter
        || !where_bind_group || !where_bind_attr) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&BufferType);
    Py_INCREF(&SitesType);
    Py_INCREF(&BatchType);
    if (PyModule_AddObject(m, "Batch", (PyObject *)&BatchType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddObject(m, "Buffer", (PyObject *)&BufferType) < 0
        || PyModule_AddObject(m, "Sites", (PyObject *)&SitesType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

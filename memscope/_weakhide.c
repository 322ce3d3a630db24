/* memscope._weakhide: keeps memscope's own weak references out of ``obj.__weakref__``.
 *
 * Full mode watches each weak-referenceable object it sees bound with a weak reference
 * whose callback records the object's FINAL event.  CPython's ``__weakref__`` getter
 * (typeobject.c, subtype_getweakref) returns the head of the object's list of weak
 * references, and a reference with a callback goes to the head when the object has no
 * basic reference (weakrefobject.c: insert_head, or insert_after the basic ref/proxy):
 * the program then saw memscope's reference where it had None or its own (boltons'
 * wrap_trace copies every attribute and failed on it; issue 17).
 *
 * memscope's references are of one class (``memscope._hooks._Watch``, a subclass of
 * weakref.ref, always given a callback, so never a "basic" reference that CPython would
 * reuse or put first).  ``hide(descriptor)`` points a class's ``__weakref__`` getset
 * descriptor at a getter that calls CPython's own and skips memscope's references from
 * the head on.  Memscope's insertions never reorder the program's references, so what
 * is left is exactly the list the program would have: the same head, or None.  The
 * descriptor object itself is unchanged (same type, name, doc, identity).
 *
 * Not hidden: ``weakref.getweakrefcount`` and ``weakref.getweakrefs`` count and list
 * memscope's references too (docs/realworld.md).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

static getter orig_get = NULL;           /* CPython's subtype_getweakref */
static PyTypeObject *watch_type = NULL;  /* memscope._hooks._Watch (a strong ref) */
static PyGetSetDef hidden_def = {"__weakref__", NULL, NULL, NULL, NULL};

static PyObject *
hidden_get(PyObject *obj, void *closure)
{
    PyObject *head = orig_get(obj, closure);
    if (head == NULL || head == Py_None) {
        return head;
    }
    PyWeakReference *r = (PyWeakReference *)head;
    while (r != NULL && Py_TYPE(r) == watch_type) {
        r = r->wr_next;
    }
    if ((PyObject *)r == head) {
        return head;
    }
    Py_DECREF(head);
    return Py_NewRef(r != NULL ? (PyObject *)r : Py_None);
}

static int
is_getset(PyObject *d)
{
    return Py_IS_TYPE(d, &PyGetSetDescr_Type);
}

/* init(reference_descriptor, watch_type): the ``__weakref__`` descriptor of a plain
 * class (its getter is CPython's), and the class of memscope's references. */
static PyObject *
weakhide_init(PyObject *self, PyObject *args)
{
    PyObject *ref_descr, *wt;
    if (!PyArg_ParseTuple(args, "OO!:init", &ref_descr, &PyType_Type, &wt)) {
        return NULL;
    }
    if (!is_getset(ref_descr)) {
        PyErr_SetString(PyExc_TypeError, "init: expected a getset descriptor");
        return NULL;
    }
    PyGetSetDef *def = ((PyGetSetDescrObject *)ref_descr)->d_getset;
    if (def == &hidden_def) {
        Py_RETURN_NONE;  /* already set up */
    }
    if (def->get == NULL || def->set != NULL) {
        PyErr_SetString(PyExc_TypeError, "init: not CPython's __weakref__ getter");
        return NULL;
    }
    orig_get = def->get;
    hidden_def.get = hidden_get;
    hidden_def.doc = def->doc;
    hidden_def.closure = def->closure;
    Py_XSETREF(watch_type, (PyTypeObject *)Py_NewRef(wt));
    Py_RETURN_NONE;
}

/* hide(descriptor) -> bool: True if this ``__weakref__`` descriptor now skips
 * memscope's references (or did already); False if it is not CPython's getter. */
static PyObject *
weakhide_hide(PyObject *self, PyObject *descr)
{
    if (orig_get == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "hide: init() first");
        return NULL;
    }
    if (!is_getset(descr)) {
        Py_RETURN_FALSE;
    }
    PyGetSetDescrObject *d = (PyGetSetDescrObject *)descr;
    if (d->d_getset == &hidden_def) {
        Py_RETURN_TRUE;
    }
    if (d->d_getset->get != orig_get || d->d_getset->set != NULL
            || d->d_getset->closure != hidden_def.closure) {
        Py_RETURN_FALSE;
    }
    d->d_getset = &hidden_def;
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"init", weakhide_init, METH_VARARGS, "init(reference_descriptor, watch_type)"},
    {"hide", weakhide_hide, METH_O, "hide(descriptor) -> bool"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "memscope._weakhide",
    "Keeps memscope's weak references out of obj.__weakref__.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__weakhide(void)
{
    return PyModule_Create(&module);
}

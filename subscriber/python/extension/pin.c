/* pin.c - confcast._pin, the C fast path of Subscriber.pin().
 *
 * Why it exists: the ASGI middleware pins every request, so `with sub.pin():`
 * runs once per request and should cost well under a microsecond. Written in
 * Python it costs about 0.8 us on the project's test machine: two ctypes
 * calls, the `with` protocol through Python methods, and the counters that
 * keep close() from freeing a handle a hold is using. Here __enter__ and
 * __exit__ are C, the hold and release are direct calls into libconfcast.so,
 * and no counter is needed (see "Why no close() counters" below).
 *
 * What it is: one type, Pin(subscriber), used as confcast.Subscriber.pin()'s
 * context object. It handles the common case only - the subscriber's cached
 * snapshot is current and its segment open - and calls back into Python
 * (Subscriber._hold_current) for everything else: a refresh, a closed
 * subscriber, an error to raise. It reads these attributes, which
 * confcast/subscriber.py keeps for it:
 *
 *   subscriber._pair       memoryview of the header's [version, retired] words
 *   subscriber._snapshot   the cached Snapshot
 *   snapshot._expected_pair, snapshot.version
 *   subscriber._closing    True once close() began
 *   subscriber._seg        the OpenSegment, or None
 *   segment.address        the C handle as an int, 0 once freed
 *
 * PROTOCOL names that list's version; the package uses this module only when
 * it finds the PROTOCOL it was written for, and the pure-Python Pin otherwise.
 *
 * The library's functions arrive as addresses (bind()), taken from the
 * ctypes library the package loaded: so this module links against nothing
 * but Python, and always calls the very library the rest of the package uses.
 *
 * Why no close() counters: the GIL is held from the check of _closing to the
 * end of the C call, and nothing in between runs Python code (attribute reads
 * of plain instance attributes and a memoryview comparison do not), so
 * close(), which is Python code, cannot run in between. A pair that is not a
 * memoryview (a closed or forked subscriber's stand-in, whose comparison is
 * Python code) takes the Python path before anything is held.
 *
 * Built against the stable ABI (Py_LIMITED_API 3.10): one _pin.abi3.so for
 * every CPython with a GIL from 3.10 on (the package never loads it into a
 * free-threaded one: see above).
 *
 * Threading: any thread, under the GIL; the bound function addresses are set
 * once by bind() before the first Pin and never change.
 */
#define Py_LIMITED_API 0x030A0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define CONFCAST_PIN_PROTOCOL 1

typedef int (*hold_fn)(void *, uint64_t);

static hold_fn confcast_hold_fn;    /* confcast_hold from the package's libconfcast.so */
static hold_fn confcast_release_fn; /* confcast_release, likewise */

/* Interned attribute names, made once at import. */
static PyObject *str_pair, *str_snapshot, *str_expected_pair, *str_version, *str_closing, *str_seg,
    *str_address, *str_hold_current;

typedef struct {
  PyObject_HEAD
  PyObject *subscriber; /* the Subscriber: strong reference */
  PyObject *segment;    /* the OpenSegment the hold was made in, NULL when not entered */
  uint64_t version;     /* the version held, while segment != NULL */
} Pin;

/* The handle of segment, or NULL once it was freed (or on an error, set). */
static void *SegmentHandle(PyObject *segment) {
  PyObject *address = PyObject_GetAttr(segment, str_address);
  if (address == NULL) return NULL;
  void *handle = PyLong_AsVoidPtr(address);
  Py_DECREF(address);
  return handle;
}

/* 1 if the fast path may run: the subscriber is open and its cached
 * snapshot current. Sets *snapshot, *segment, *handle (new references),
 * *version. 0: take the Python path. -1: an error is set. */
static int FastPathApplies(PyObject *sub, PyObject **pair, PyObject **expected, PyObject **snapshot,
                           PyObject **segment, void **handle, uint64_t *version) {
  *pair = *expected = *snapshot = *segment = NULL;
  *pair = PyObject_GetAttr(sub, str_pair);
  if (*pair == NULL) return -1;
  if (!PyMemoryView_Check(*pair)) return 0;
  *snapshot = PyObject_GetAttr(sub, str_snapshot);
  if (*snapshot == NULL) return -1;
  *expected = PyObject_GetAttr(*snapshot, str_expected_pair);
  if (*expected == NULL) return -1;
  if (!PyMemoryView_Check(*expected)) return 0;
  int current = PyObject_RichCompareBool(*pair, *expected, Py_EQ);
  if (current <= 0) return current;
  PyObject *closing = PyObject_GetAttr(sub, str_closing);
  if (closing == NULL) return -1;
  int closed = PyObject_IsTrue(closing);
  Py_DECREF(closing);
  if (closed != 0) return closed < 0 ? -1 : 0;
  *segment = PyObject_GetAttr(sub, str_seg);
  if (*segment == NULL) return -1;
  if (*segment == Py_None) return 0;
  *handle = SegmentHandle(*segment);
  if (*handle == NULL) return PyErr_Occurred() ? -1 : 0;
  PyObject *v = PyObject_GetAttr(*snapshot, str_version);
  if (v == NULL) return -1;
  *version = PyLong_AsUnsignedLongLong(v);
  Py_DECREF(v);
  if (*version == (uint64_t)-1 && PyErr_Occurred()) {
    PyErr_Clear();  /* "nothing published yet" (-1) and the like: the Python path says what */
    return 0;
  }
  return 1;
}

/* The Python path: Subscriber._hold_current() -> (snapshot, segment, version arg).
 * Should the tuple not be what that method returns (it always is), the error
 * is raised and the hold it made stays until close(): a leaked hold delays a
 * rollout gate, a release guessed wrong could drop another pin's hold. */
static PyObject *EnterThroughPython(Pin *self) {
  PyObject *held = PyObject_CallMethodObjArgs(self->subscriber, str_hold_current, NULL);
  if (held == NULL) return NULL;
  PyObject *snapshot = NULL, *segment = NULL, *v = NULL;
  if (!PyTuple_Check(held) || PyTuple_Size(held) != 3) {
    PyErr_SetString(PyExc_TypeError, "confcast._pin: _hold_current() must return a 3-tuple");
    goto done;
  }
  snapshot = PyTuple_GetItem(held, 0);
  segment = PyTuple_GetItem(held, 1);
  v = PyObject_GetAttr(snapshot, str_version);
  if (v == NULL) {
    snapshot = NULL;
    goto done;
  }
  self->version = PyLong_AsUnsignedLongLong(v);
  Py_DECREF(v);
  if (PyErr_Occurred()) {
    snapshot = NULL;
    goto done;
  }
  Py_INCREF(segment);
  self->segment = segment;
  Py_INCREF(snapshot);
done:
  Py_DECREF(held);
  return snapshot;
}

static PyObject *Pin_enter(Pin *self, PyObject *Py_UNUSED(ignored)) {
  if (self->subscriber == NULL) {  /* made by Pin.__new__ without __init__ */
    PyErr_SetString(PyExc_TypeError, "Pin(subscriber) was not initialised");
    return NULL;
  }
  if (self->segment != NULL) {
    PyErr_SetString(PyExc_RuntimeError, "this pin() is already entered; call pin() again for another hold");
    return NULL;
  }
  PyObject *pair, *expected, *snapshot, *segment;
  void *handle = NULL;
  uint64_t version = 0;
  int fast = FastPathApplies(self->subscriber, &pair, &expected, &snapshot, &segment, &handle, &version);
  if (fast == 1 && confcast_hold_fn(handle, version) == 0) {
    /* Hold first, then look again: a version that moved on meanwhile may have
     * been judged drained by a rollout gate before the hold was made. */
    int still = PyObject_RichCompareBool(pair, expected, Py_EQ);
    if (still == 1) {
      self->segment = segment;
      self->version = version;
      Py_XDECREF(pair);
      Py_XDECREF(expected);
      return snapshot;
    }
    confcast_release_fn(handle, version);
    if (still < 0) fast = -1;
  }
  Py_XDECREF(pair);
  Py_XDECREF(expected);
  Py_XDECREF(snapshot);
  Py_XDECREF(segment);
  if (fast < 0) return NULL;
  return EnterThroughPython(self);
}

static PyObject *Pin_exit(Pin *self, PyObject *const *Py_UNUSED(args), Py_ssize_t Py_UNUSED(nargs)) {
  PyObject *segment = self->segment;
  if (segment == NULL) Py_RETURN_NONE;
  self->segment = NULL;
  PyObject *closing = PyObject_GetAttr(self->subscriber, str_closing);
  int closed = closing == NULL ? -1 : PyObject_IsTrue(closing);
  Py_XDECREF(closing);
  void *handle = closed == 0 ? SegmentHandle(segment) : NULL;
  /* Closed, or its segment freed: the holds went with it. */
  if (handle != NULL) confcast_release_fn(handle, self->version);
  Py_DECREF(segment);
  if (PyErr_Occurred()) return NULL;
  Py_RETURN_NONE;
}

static int Pin_init(Pin *self, PyObject *args, PyObject *kwargs) {
  PyObject *subscriber;
  static char *keywords[] = {"subscriber", NULL};
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Pin", keywords, &subscriber)) return -1;
  if (confcast_hold_fn == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "confcast._pin: bind() was not called");
    return -1;
  }
  PyObject *previous = self->subscriber;
  Py_INCREF(subscriber);
  self->subscriber = subscriber;
  Py_XDECREF(previous);
  return 0;
}

static void Pin_dealloc(Pin *self) {
  PyTypeObject *type = Py_TYPE(self);
  Py_XDECREF(self->subscriber);
  Py_XDECREF(self->segment);  /* a pin never exited: like the Python Pin, its hold stays until close */
  freefunc free_slot = (freefunc)PyType_GetSlot(type, Py_tp_free);
  free_slot(self);
  Py_DECREF(type);
}

static PyMethodDef Pin_methods[] = {
    {"__enter__", (PyCFunction)Pin_enter, METH_NOARGS, "Holds the current version; returns its Snapshot."},
    {"__exit__", (PyCFunction)(void (*)(void))Pin_exit, METH_FASTCALL, "Releases the hold."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Pin_slots[] = {
    {Py_tp_doc, "Pin(subscriber): the context of Subscriber.pin(), in C."},
    {Py_tp_init, Pin_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, Pin_dealloc},
    {Py_tp_methods, Pin_methods},
    {0, NULL},
};

static PyType_Spec Pin_spec = {
    .name = "confcast._pin.Pin",
    .basicsize = sizeof(Pin),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,  /* nobody swaps __enter__ under a pin */
    .slots = Pin_slots,
};

static PyObject *Bind(PyObject *Py_UNUSED(module), PyObject *args) {
  PyObject *hold_address, *release_address;
  if (!PyArg_ParseTuple(args, "O!O!:bind", &PyLong_Type, &hold_address, &PyLong_Type, &release_address)) {
    return NULL;
  }
  void *hold = PyLong_AsVoidPtr(hold_address);
  void *release = PyLong_AsVoidPtr(release_address);
  if (PyErr_Occurred()) return NULL;
  if (hold == NULL || release == NULL) {
    PyErr_SetString(PyExc_ValueError, "confcast._pin.bind: a function address is 0");
    return NULL;
  }
  /* The package binds one library per process. A second library (another
   * build loaded by hand) is refused: Pins made for the first would call the
   * second with the first one's handles. */
  if (confcast_hold_fn != NULL && (confcast_hold_fn != (hold_fn)hold || confcast_release_fn != (hold_fn)release)) {
    PyErr_SetString(PyExc_ValueError, "confcast._pin is bound to another libconfcast.so in this process");
    return NULL;
  }
  confcast_hold_fn = (hold_fn)hold;
  confcast_release_fn = (hold_fn)release;
  Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"bind", Bind, METH_VARARGS,
     "bind(hold_address, release_address): the addresses of confcast_hold and confcast_release."},
    {NULL, NULL, 0, NULL},
};

static int Intern(PyObject **slot, const char *name) {
  *slot = PyUnicode_InternFromString(name);
  return *slot == NULL ? -1 : 0;
}

static int ModuleExec(PyObject *module) {
  if (Intern(&str_pair, "_pair") || Intern(&str_snapshot, "_snapshot") ||
      Intern(&str_expected_pair, "_expected_pair") || Intern(&str_version, "version") ||
      Intern(&str_closing, "_closing") || Intern(&str_seg, "_seg") || Intern(&str_address, "address") ||
      Intern(&str_hold_current, "_hold_current")) {
    return -1;
  }
  PyObject *type = PyType_FromSpec(&Pin_spec);
  if (type == NULL) return -1;
  if (PyModule_AddObject(module, "Pin", type) < 0) {
    Py_DECREF(type);
    return -1;
  }
  return PyModule_AddIntConstant(module, "PROTOCOL", CONFCAST_PIN_PROTOCOL);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, ModuleExec},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "confcast._pin",
    .m_doc = "The C fast path of confcast.Subscriber.pin() (see pin.c).",
    .m_size = 0,
    .m_methods = module_methods,
    .m_slots = module_slots,
};

PyMODINIT_FUNC PyInit__pin(void) { return PyModuleDef_Init(&module_def); }

"""``forbid_package_calls()``: while a learner's implementation runs, the ready-made ones refuse to work.

Inside the context manager every implementation of the LSTM, sLSTM and mLSTM that the learner could call instead
of writing their own raises ``WriteItYourself``:

* this package's numpy and PyTorch cells: every function of the modules under ``xlstm_edu.np`` and
  ``xlstm_edu.nn`` (the small helpers ``sigmoid``, ``log_sigmoid``, ``log_forget_gate``, the input checks and the
  gradient check stay usable);
* the official packages: every function of ``mlstm_kernels`` and ``xlstm``;
* PyTorch's LSTM: ``torch.nn.LSTM``/``LSTMCell`` (their ``forward``) and ``torch.lstm``/``torch.lstm_cell``.

How: the *code* of each such function is swapped for a stub that raises (and restored on exit), so every name
bound to the function refuses, including aliases made earlier (``from xlstm_edu.np import mlstm_parallel as
ref``), partials and closures. Functions that hold a closure (decorator wrappers) and built-ins are replaced as
module attributes instead. Modules imported for the first time inside the block are treated the same way as they
load. Each refused call is recorded in ``.calls`` even when the learner's code catches the exception.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import inspect
import sys
import types

MESSAGE = "{name} is off limits in this exercise: write it yourself"

# modules whose functions are refused (a module matches a prefix when it equals it or starts with prefix + ".")
FORBIDDEN_PREFIXES = ("xlstm_edu.np", "xlstm_edu.nn", "mlstm_kernels", "xlstm")
# helpers a learner may use: not an implementation of a cell
ALLOWED_MODULES = ("xlstm_edu.np.gradcheck", "xlstm_edu.np._mlstm_checks", "xlstm_edu.nn._checks",
                   "xlstm_edu.np._validate", "xlstm_edu.nn._validate")
ALLOWED_FUNCTIONS = {("xlstm_edu.np.gating", "sigmoid"), ("xlstm_edu.np.gating", "log_sigmoid"),
                     ("xlstm_edu.np.gating", "log_forget_gate")}
_TORCH_BUILTINS = ("lstm", "lstm_cell")  # torch.lstm, torch.lstm_cell and the same on torch._VF


class WriteItYourself(RuntimeError):
    """Raised by a ready-made implementation called inside ``forbid_package_calls()``."""


def _matches(modname: str) -> bool:
    return any(modname == p or modname.startswith(p + ".") for p in FORBIDDEN_PREFIXES)


def _public_name(fn) -> str:
    mod = getattr(fn, "__module__", "") or ""
    name = getattr(fn, "__qualname__", getattr(fn, "__name__", "?"))
    for public in ("xlstm_edu.np", "xlstm_edu.nn"):
        pkg = sys.modules.get(public)
        if mod.startswith(public + ".") and pkg is not None and getattr(pkg, name, None) is fn:
            return f"{public}.{name}"
    return f"{mod}.{name}" if mod else name


_ACTIVE: list = []  # the active Forbidder (at most one; nested blocks share it)
_STUB_CODE: dict = {}  # name -> the stub's code object


def _refuse(name: str) -> WriteItYourself:
    """Called by the stubs: record the call, return the exception to raise."""
    if _ACTIVE:
        _ACTIVE[0].calls.append(name)
    return WriteItYourself(MESSAGE.format(name=name))


def _stub_code(name: str, co_name: str):
    code = _STUB_CODE.get(name)
    if code is None:
        src = (f"def {co_name}(*args, **kwargs):\n"
               f"    raise __import__('xlstm_edu.exercises.forbid', fromlist=['_refuse'])._refuse({name!r})\n")
        ns: dict = {}
        exec(compile(src, f"<{name}: write it yourself>", "exec"), ns)
        code = _STUB_CODE[name] = ns[co_name].__code__
    return code


def _attr_stub(name: str):
    def refused(*args, **kwargs):
        raise _refuse(name)

    refused.__name__ = name.rsplit(".", 1)[-1]
    return refused


class _Hook(importlib.abc.MetaPathFinder):
    """Treat modules that load inside the block like the ones loaded before it."""

    def __init__(self, forbidder):
        self.forbidder = forbidder

    def find_spec(self, fullname, path, target=None):
        if not (_matches(fullname) or fullname == "torch" or fullname.startswith("torch.nn")):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, self.forbidder)
                return spec
        return None


class _Loader(importlib.abc.Loader):
    def __init__(self, loader, forbidder):
        self._loader, self._forbidder = loader, forbidder

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        if self._forbidder.active:
            self._forbidder.patch_module(module)

    def __getattr__(self, name):  # is_package, get_resource_reader, ...
        return getattr(self._loader, name)


class Forbidder:
    """The state of one ``forbid_package_calls()`` block: what was swapped, and the refused calls."""

    def __init__(self, extra_namespaces=()):
        self.calls: list = []
        self.active = False
        self._codes: dict = {}  # id(fn) -> (fn, original code, defaults, kwdefaults)
        self._attrs: list = []  # (namespace dict, key, original value)
        self._done_modules: set = set()
        self._extra = list(extra_namespaces)
        self._hook = _Hook(self)

    # ------------------------------------------------------------------------------------------------ patching
    def _swap(self, fn, name: str) -> bool:
        """Swap fn's code for the stub; False when that is impossible (a closure)."""
        if id(fn) in self._codes:
            return True
        if fn.__closure__:
            return False
        self._codes[id(fn)] = (fn, fn.__code__, fn.__defaults__, fn.__kwdefaults__)
        fn.__code__ = _stub_code(name, fn.__code__.co_name if fn.__code__.co_name.isidentifier() else "refused")
        fn.__defaults__ = None
        fn.__kwdefaults__ = None
        return True

    def _set_attr(self, ns: dict, key, value):
        self._attrs.append((ns, key, ns[key]))
        ns[key] = value

    def _forbidden_function(self, modname: str, key: str, value) -> bool:
        if not isinstance(value, types.FunctionType):
            return False
        defined_in = getattr(value, "__module__", "") or ""
        if not _matches(defined_in) or defined_in in ALLOWED_MODULES:
            return False
        return (defined_in, value.__name__) not in ALLOWED_FUNCTIONS

    def patch_module(self, module):
        modname = getattr(module, "__name__", None)
        if not isinstance(modname, str) or modname in self._done_modules:
            return
        if _matches(modname) and modname not in ALLOWED_MODULES:
            self._done_modules.add(modname)
            ns = vars(module)
            for key, value in list(ns.items()):
                if self._forbidden_function(modname, key, value):
                    name = _public_name(value)
                    target = inspect.unwrap(value) if hasattr(value, "__wrapped__") else value
                    if isinstance(target, types.FunctionType) and target is not value:
                        self._swap(target, name)
                    if not self._swap(value, name):
                        self._set_attr(ns, key, _attr_stub(name))
                elif isinstance(value, type) and getattr(value, "__module__", "") == modname:
                    # methods of classes defined here (e.g. a block's forward) call the refused functions anyway;
                    # the official sLSTM/mLSTM cells' own methods are refused too
                    if not modname.startswith("xlstm_edu"):
                        for attr, meth in list(vars(value).items()):
                            if isinstance(meth, (staticmethod, classmethod)):
                                meth = meth.__func__
                            if isinstance(meth, types.FunctionType):
                                self._swap(meth, f"{modname}.{value.__qualname__}.{attr}")
        elif modname == "torch.nn.modules.rnn":
            self._done_modules.add(modname)
            for cls_name in ("LSTM", "LSTMCell"):
                cls = getattr(module, cls_name, None)
                if cls is not None:
                    self._swap(cls.forward, f"torch.nn.{cls_name}")
        elif modname in ("torch", "torch._VF"):
            self._done_modules.add(modname)
            ns = vars(module)
            for key in _TORCH_BUILTINS:
                if key in ns:
                    self._set_attr(ns, key, _attr_stub(f"{modname}.{key}"))
                elif modname == "torch._VF" and hasattr(module, key):  # resolved through __getattr__
                    self._attrs.append((ns, key, _MISSING))
                    ns[key] = _attr_stub(f"{modname}.{key}")

    # ---------------------------------------------------------------------------------------------- enter/exit
    def __enter__(self):
        self.active = True
        try:
            for module in list(sys.modules.values()):
                if module is not None:
                    self.patch_module(module)
            sys.meta_path.insert(0, self._hook)
        except BaseException:
            self.restore()
            raise
        return self

    def restore(self):
        self.active = False
        if self._hook in sys.meta_path:
            sys.meta_path.remove(self._hook)
        for ns, key, original in reversed(self._attrs):
            if original is _MISSING:
                ns.pop(key, None)
            else:
                ns[key] = original
        for fn, code, defaults, kwdefaults in self._codes.values():
            fn.__code__ = code
            fn.__defaults__ = defaults
            fn.__kwdefaults__ = kwdefaults
        self._attrs.clear()
        self._codes.clear()
        self._done_modules.clear()

    def __exit__(self, *exc):
        self.restore()
        return False


_MISSING = object()


@contextlib.contextmanager
def forbid_package_calls():
    """Context manager: inside it the package's and the official implementations of the LSTM, sLSTM and mLSTM
    (every form, numpy and PyTorch) raise ``WriteItYourself`` ("... is off limits in this exercise: write it
    yourself"); everything is restored on exit. Yields the ``Forbidder``, whose ``.calls`` lists the refused
    calls (also those the learner's code caught). Nested blocks share the outer one.

    Compute the reference values *before* entering the block: inside it the package refuses too.
    """
    if _ACTIVE:
        yield _ACTIVE[0]
        return
    f = Forbidder()
    with f:
        _ACTIVE.append(f)
        try:
            yield f
        finally:
            _ACTIVE.remove(f)

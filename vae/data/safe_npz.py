"""Reading ``.npz`` archives without ever unpickling: arrays with ``allow_pickle=False``, and the
object entries (such as dSprites' ``metadata`` dict) decoded by a data-only pickle reader.

``pickle.load`` (and ``np.load(..., allow_pickle=True)``) runs whatever callables a file names, so
a crafted data file can execute code. :func:`read_pickled_data` walks the pickle's opcodes with
:func:`pickletools.genops` (a parser that calls nothing) and builds only plain data: ``None``,
booleans, numbers, strings, bytes, tuples, lists, dicts, sets and numeric numpy arrays / scalars.
Any other global (``os.system``, ``builtins.eval``, a class) is refused with :class:`UnsafePickle`
before anything is called. Python-2 byte strings are decoded as latin-1 (``encoding="latin1"``).

>>> import pickle, numpy as np
>>> read_pickled_data(pickle.dumps({"sizes": np.array([1, 3]), "name": "x"}, protocol=2))["sizes"]
array([1, 3])
>>> try:
...     read_pickled_data(b"cos\\nsystem\\n(S'true'\\ntR.")   # os.system("true") when unpickled
... except UnsafePickle as err:
...     print(err)
refused global os.system: only plain data and numeric numpy arrays are read
"""
from __future__ import annotations

import math
import pickletools
import zipfile
from typing import Any

import numpy as np

__all__ = ["UnsafePickle", "read_pickled_data", "npz_members", "npz_header", "read_npz_object"]

MAX_OBJECT_BYTES = 16 << 20  # an object entry (metadata) larger than this is not read
_SAFE_KINDS = "biufcSU"  # numeric, boolean and fixed-width strings; object arrays only as lists of read data


class UnsafePickle(ValueError):
    """A pickle that needs more than plain data to be read (a callable, a class, an object array)."""


class _Mark:
    pass


class _Global:
    """A whitelisted global, resolved to one of the builders below (never imported)."""

    def __init__(self, name: str) -> None:
        self.name = name


class _ArrayStub:
    """``numpy.core.multiarray._reconstruct(...)``: an array whose data comes with ``BUILD``."""

    value: Any = None


class _DtypeStub:
    def __init__(self, dtype: np.dtype) -> None:
        self.value = dtype


def _safe_dtype(descr: Any, allow_object: bool = False) -> np.dtype:
    """A plain numeric dtype (or ``object`` where ``allow_object``: an array whose elements were read
    as data); structured, void and other dtypes are refused."""
    dtype = descr.value if isinstance(descr, _DtypeStub) else None
    if dtype is None:
        if not isinstance(descr, str):
            raise UnsafePickle(f"refused dtype {descr!r}: only numeric dtypes are read")
        try:
            dtype = np.dtype(descr)
        except TypeError as err:
            raise UnsafePickle(f"refused dtype {descr!r}: {err}") from None
    if dtype.kind == "O" and allow_object:
        return dtype
    if dtype.kind not in _SAFE_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise UnsafePickle(f"refused dtype {descr!r}: only numeric dtypes are read")
    return dtype


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str):  # a Python-2 byte string, decoded as latin-1 by the parser
        return data.encode("latin-1")
    raise UnsafePickle(f"refused array data of type {type(data).__name__}: only raw bytes are read")


def _array(raw: Any, dtype: np.dtype, shape: Any, fortran: bool) -> np.ndarray:
    shape = tuple(int(n) for n in shape)
    if any(n < 0 for n in shape):
        raise UnsafePickle(f"negative array shape {shape}")
    if dtype.kind == "O":  # the elements come as a list of values this reader has already built
        if not isinstance(raw, list) or len(raw) != math.prod(shape):
            raise UnsafePickle(f"object array data does not fit shape {shape}")
        out = np.empty(len(raw), dtype=object)
        for i, item in enumerate(raw):
            out[i] = _resolve(item)
        return out.reshape(shape, order="F" if fortran else "C")
    raw = _as_bytes(raw)
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise UnsafePickle(f"array data of {len(raw)} bytes does not fit shape {shape} of {dtype}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def _build(name: str, args: tuple) -> Any:
    """Apply a whitelisted global to ``args`` (the ``REDUCE`` opcode)."""
    if name.endswith("._reconstruct"):
        return _ArrayStub()
    if name == "numpy.dtype":
        return _DtypeStub(_safe_dtype(args[0] if args else None, allow_object=True))
    if name.endswith(".scalar"):
        dtype = _safe_dtype(args[0])
        raw = _as_bytes(args[1])
        if len(raw) != dtype.itemsize:
            raise UnsafePickle("scalar data does not fit its dtype")
        return np.frombuffer(raw, dtype=dtype)[0]
    if name.endswith("._frombuffer"):
        buf, dtype, shape, order = args
        return _array(buf, _safe_dtype(dtype), shape, order == "F")
    if name == "_codecs.encode":
        text, encoding = (args + ("utf-8",))[:2]
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8"):
            raise UnsafePickle("refused _codecs.encode arguments")
        return text.encode(encoding)
    if name == "collections.OrderedDict":
        return dict(*args)
    if name in ("builtins.set", "builtins.frozenset", "__builtin__.set", "__builtin__.frozenset"):
        return set(*args) if name.endswith(".set") else frozenset(*args)
    if name in ("builtins.complex", "__builtin__.complex"):
        return complex(*args)
    raise UnsafePickle(f"refused call of {name}")  # pragma: no cover - _GLOBALS lists the names above


_GLOBALS = {
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
    "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
    "numpy.dtype", "numpy.ndarray", "_codecs.encode", "collections.OrderedDict",
    "builtins.set", "builtins.frozenset", "builtins.complex",
    "__builtin__.set", "__builtin__.frozenset", "__builtin__.complex",
}


def _resolve(obj: Any, depth: int = 0) -> Any:
    """Replace the stubs by their values, recursively."""
    if depth > 100:
        raise UnsafePickle("data nested too deeply")
    if isinstance(obj, (_ArrayStub, _DtypeStub)):
        if obj.value is None:
            raise UnsafePickle("an array without its data")
        return obj.value
    if isinstance(obj, _Global):
        raise UnsafePickle(f"refused bare global {obj.name}")
    if isinstance(obj, dict):
        return {_resolve(k, depth + 1): _resolve(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_resolve(v, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(v, depth + 1) for v in obj)
    return obj


def _key(obj: Any) -> Any:
    """A hashable dict key or set element (stubs resolved)."""
    obj = _resolve(obj)
    try:
        hash(obj)
    except TypeError:
        raise UnsafePickle(f"unhashable key of type {type(obj).__name__}") from None
    return obj


def read_pickled_data(data: bytes, max_ops: int = 1_000_000) -> Any:
    """The plain data a pickle describes, read without unpickling (see the module doc).

    Raises :class:`UnsafePickle` (a ``ValueError``) for anything but plain data and numeric numpy
    arrays, and for malformed pickles.
    """
    stack: list[Any] = []
    memo: dict[int, Any] = {}

    def pop_mark() -> list[Any]:
        for i in range(len(stack) - 1, -1, -1):
            if isinstance(stack[i], _Mark):
                items = stack[i + 1:]
                del stack[i:]
                return items
        raise UnsafePickle("MARK missing")

    try:
        for n_ops, (op, arg, _) in enumerate(pickletools.genops(data)):
            if n_ops >= max_ops:
                raise UnsafePickle(f"more than {max_ops} pickle opcodes")
            name = op.name
            if name in ("PROTO", "FRAME"):
                continue
            if name == "STOP":
                if len(stack) != 1:
                    raise UnsafePickle("malformed pickle (stack not empty at STOP)")
                return _resolve(stack.pop())
            if name == "MARK":
                stack.append(_Mark())
            elif name == "POP":
                stack.pop()
            elif name == "POP_MARK":
                pop_mark()
            elif name == "DUP":
                stack.append(stack[-1])
            elif name == "NONE":
                stack.append(None)
            elif name in ("NEWTRUE", "NEWFALSE"):
                stack.append(name == "NEWTRUE")
            elif name in ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
                          "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE",
                          "SHORT_BINUNICODE", "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8"):
                stack.append(arg)
            elif name == "BYTEARRAY8":
                stack.append(bytes(arg))
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name == "EMPTY_SET":
                stack.append(set())
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                k = int(name[-1])
                items = tuple(stack[-k:])
                del stack[-k:]
                stack.append(items)
            elif name == "TUPLE":
                stack.append(tuple(pop_mark()))
            elif name == "LIST":
                stack.append(pop_mark())
            elif name == "DICT":
                items = pop_mark()
                stack.append({_key(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)})
            elif name == "FROZENSET":
                stack.append(frozenset(_key(v) for v in pop_mark()))
            elif name == "APPEND":
                value = stack.pop()
                stack[-1].append(value)
            elif name == "APPENDS":
                items = pop_mark()
                stack[-1].extend(items)
            elif name == "SETITEM":
                value, key = stack.pop(), stack.pop()
                stack[-1][_key(key)] = value
            elif name == "SETITEMS":
                items = pop_mark()
                target = stack[-1]
                for i in range(0, len(items) - 1, 2):
                    target[_key(items[i])] = items[i + 1]
            elif name == "ADDITEMS":
                items = pop_mark()
                stack[-1].update(_key(v) for v in items)
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[int(arg)])
            elif name in ("GLOBAL", "STACK_GLOBAL"):
                if name == "GLOBAL":
                    module, _, attr = str(arg).partition(" ")
                else:
                    attr, module = stack.pop(), stack.pop()
                    if not (isinstance(module, str) and isinstance(attr, str)):
                        raise UnsafePickle("malformed STACK_GLOBAL")
                full = f"{module}.{attr}"
                if full not in _GLOBALS:
                    raise UnsafePickle(f"refused global {full}: only plain data and numeric numpy arrays are read")
                stack.append(_Global(full))
            elif name == "REDUCE":
                args, fn = stack.pop(), stack.pop()
                if not isinstance(fn, _Global) or not isinstance(args, tuple):
                    raise UnsafePickle("refused call of a non-whitelisted object")
                stack.append(_build(fn.name, args))
            elif name == "BUILD":
                state, obj = stack.pop(), stack[-1]
                if isinstance(obj, _DtypeStub):
                    if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">"):
                        obj.value = obj.value.newbyteorder(state[1])
                elif isinstance(obj, _ArrayStub) and isinstance(state, tuple) and len(state) in (4, 5):
                    shape, dtype, fortran, raw = state[-4:]
                    obj.value = _array(raw, _safe_dtype(dtype, allow_object=True), shape, bool(fortran))
                elif isinstance(obj, dict) and isinstance(state, dict):
                    obj.update(state)
                else:
                    raise UnsafePickle(f"refused BUILD of {type(obj).__name__}")
            else:
                raise UnsafePickle(f"refused pickle opcode {name}")
    except UnsafePickle:
        raise
    except (ValueError, IndexError, KeyError, TypeError, AttributeError, EOFError) as err:
        raise UnsafePickle(f"malformed pickle ({type(err).__name__}: {err})") from None
    raise UnsafePickle("malformed pickle (no STOP)")


# ---------------------------------------------------------------------------------- npz members
def npz_members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """``{key: ZipInfo}`` of the ``key.npy`` members of an npz archive."""
    return {info.filename[:-4]: info for info in zf.infolist() if info.filename.endswith(".npy")}


def _read_header(fp) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(fp)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = reader(fp)  # the header is a literal dict, parsed without evaluating code
    return tuple(shape), dtype


def npz_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` of one ``.npy`` member, read from its header only."""
    with zf.open(info) as fp:
        return _read_header(fp)


def read_npz_object(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
    """The value of one member: a 0-d object entry is read with :func:`read_pickled_data` (never
    unpickled), anything else with ``allow_pickle=False``."""
    if info.file_size > MAX_OBJECT_BYTES:
        raise UnsafePickle(f"entry {info.filename} is {info.file_size} bytes, over the {MAX_OBJECT_BYTES}-byte limit")
    with zf.open(info) as fp:
        _, dtype = _read_header(fp)
        if dtype.hasobject:
            value = read_pickled_data(fp.read())
            if isinstance(value, np.ndarray) and value.dtype.hasobject and value.ndim == 0:
                value = value[()]  # what np.save makes of a dict: a 0-d object array around it
            return value
    with zf.open(info) as fp:
        return np.lib.format.read_array(fp, allow_pickle=False)

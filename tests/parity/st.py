"""Minimal safetensors reader/writer (numpy + json + struct only; Debian ships no safetensors package).

Format: u64 little-endian header length N, N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the packed,
C-contiguous little-endian tensor data. Offsets are relative to the end of the header.

numpy has no bfloat16: `BF16(array)` wraps float32 values to be written as BF16 (round to nearest even);
`load` returns BF16 tensors widened to float32 (exact), or as raw `BF16` bits with `raw_bf16=True`.
"""
import json
import struct

import numpy as np

_NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1", "BF16": "<u2"}
_CODE = {np.dtype(v).newbyteorder("="): k for k, v in _NP.items() if k != "BF16"}


class BF16:
    """bfloat16 tensor held as its uint16 bit patterns."""

    def __init__(self, values=None, *, bits=None):
        if bits is not None:
            self.bits = np.ascontiguousarray(bits, dtype=np.uint16)
        else:
            f = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
            # Round to nearest, ties to even; NaNs keep a quiet-NaN payload.
            rounded = (f + np.uint32(0x7FFF) + ((f >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
            nan = (f & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
            self.bits = np.where(nan, (f >> np.uint32(16)) | np.uint32(0x40), rounded).astype(np.uint16)

    @property
    def shape(self):
        return self.bits.shape

    def to_float32(self):
        return (self.bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def _encode(arr):
    if isinstance(arr, BF16):
        return "BF16", arr.bits
    arr = np.asarray(arr)
    code = _CODE.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"safetensors: unsupported dtype {arr.dtype}; use one of float64/32/16, int64/32, uint8 or st.BF16")
    return code, arr


def save(path, tensors, metadata=None):
    """Write `tensors` (name -> numpy array or BF16) to `path`, in insertion order."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        if name == "__metadata__":
            raise ValueError("safetensors: '__metadata__' is reserved")
        code, a = _encode(arr)
        data = np.ascontiguousarray(a, dtype=np.dtype(_NP[code])).tobytes()
        header[name] = {"dtype": code, "shape": [int(s) for s in a.shape], "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def load(path, raw_bf16=False, with_metadata=False):
    """Read a safetensors file into an insertion-ordered dict of numpy arrays (native byte order)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"safetensors: {path} is too short to hold a header")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"safetensors: {path} declares a {n}-byte header but has {len(raw)} bytes")
    header = json.loads(raw[8 : 8 + n])
    data = memoryview(raw)[8 + n :]
    metadata = header.pop("__metadata__", {}) or {}
    out, end_max = {}, 0
    for name, info in header.items():
        code, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
        if code not in _NP:
            raise ValueError(f"safetensors: tensor '{name}' has unsupported dtype {code}")
        dt = np.dtype(_NP[code])
        count = int(np.prod(shape, dtype=np.int64))
        if not (0 <= b <= e <= len(data)) or e - b != count * dt.itemsize:
            raise ValueError(f"safetensors: tensor '{name}' offsets [{b}, {e}) do not fit shape {shape} {code}")
        a = np.frombuffer(data[b:e], dtype=dt).reshape(shape).astype(dt.newbyteorder("="))
        if code == "BF16":
            a = BF16(bits=a) if raw_bf16 else BF16(bits=a).to_float32()
        out[name] = a
        end_max = max(end_max, e)
    if end_max != len(data):
        raise ValueError(f"safetensors: {path} has {len(data) - end_max} trailing bytes not owned by any tensor")
    return (out, metadata) if with_metadata else out

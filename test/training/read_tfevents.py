#!/usr/bin/env python3
"""An independent reader of TensorBoard event files, written from the format's specification (TFRecord framing
with masked CRC-32C; tensorflow.Event / Summary protobufs), stdlib only. Used by the tests to check what dptrain's
TypeScript writer produced. Usage: read_tfevents.py FILE... -> JSON on stdout:
[{"file": F, "fileVersion": "brain.Event:2", "scalars": [{"step": S, "wallTime": W, "tag": T, "value": V}, ...]}]
Exits 1 with a message on a bad length CRC, data CRC, or protobuf."""
import json
import struct
import sys


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def fields(buf):
    """Yields (field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 2:
            n, i = varint(buf, i)
            v = buf[i:i + n]
            i += n
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield num, wt, v


def read(path):
    data = open(path, "rb").read()
    out = {"file": path, "fileVersion": None, "scalars": []}
    i = 0
    while i < len(data):
        header = data[i:i + 8]
        (length,) = struct.unpack("<Q", header)
        (len_crc,) = struct.unpack("<I", data[i + 8:i + 12])
        if masked(crc32c(header)) != len_crc:
            raise ValueError(f"{path}: bad length CRC at offset {i}")
        body = data[i + 12:i + 12 + length]
        (body_crc,) = struct.unpack("<I", data[i + 12 + length:i + 16 + length])
        if masked(crc32c(body)) != body_crc:
            raise ValueError(f"{path}: bad data CRC at offset {i}")
        i += 16 + length
        wall, step = None, 0
        values = []
        for num, wt, v in fields(body):
            if num == 1 and wt == 1:
                (wall,) = struct.unpack("<d", v)
            elif num == 2 and wt == 0:
                step = v
            elif num == 3 and wt == 2:
                out["fileVersion"] = v.decode()
            elif num == 5 and wt == 2:
                for vnum, _, value in fields(v):
                    if vnum != 1:
                        continue
                    tag, simple = None, None
                    for fnum, fwt, f in fields(value):
                        if fnum == 1:
                            tag = f.decode()
                        elif fnum == 2 and fwt == 5:
                            (simple,) = struct.unpack("<f", f)
                    values.append((tag, simple))
        for tag, simple in values:
            out["scalars"].append({"step": step, "wallTime": wall, "tag": tag, "value": simple})
    return out


if __name__ == "__main__":
    try:
        print(json.dumps([read(p) for p in sys.argv[1:]]))
    except (ValueError, struct.error, IndexError) as e:
        print(f"read_tfevents: {e}", file=sys.stderr)
        sys.exit(1)

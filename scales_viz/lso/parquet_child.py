"""Read an untrusted Parquet file in a child process (run as a script, not imported).

pyarrow can abort the whole interpreter on a crafted file (``terminate called after throwing
an instance of 'parquet::ParquetException'`` from reading one column chunk's metadata,
pyarrow 26), which would take the dashboard's server down with it. So
:func:`scales_viz.lso.io.read_runs` parses Parquet here, in a short-lived process with a
memory cap, and gets back an Arrow IPC stream of plain columns.

Protocol: ``argv`` = max rows, max unpacked bytes, memory cap in bytes. The child serves
files one after another (so a run of imports pays its start-up once): each request on stdin
is an 8-byte little-endian length and the file's bytes; each answer on stdout is a status
byte (``T``: an Arrow IPC stream follows; ``R``: a one-line refusal follows), an 8-byte
length and the payload. A child that dies (a signal) is a crash the caller reports; the
next file gets a fresh child.

Bomb checks, before anything is unpacked: the row count; the page sizes and value counts in
the metadata (compressible pages); and text columns are read as dictionaries and their
expanded size checked before they are decoded (one long string repeated through a dictionary).

This file imports only the standard library and pyarrow, so it starts fast.
"""

from __future__ import annotations

import io
import resource
import sys
from typing import Any


class Refused(Exception):
    """The file breaks a limit or the schema (message for the user)."""


def _text_columns(schema: Any) -> list[str]:
    """Check the column types; return the names of the text columns."""
    import pyarrow as pa

    textual = []
    for column in schema:
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind):
            textual.append(column.name)
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            inner = kind.value_type
            if not (pa.types.is_integer(inner) or pa.types.is_floating(inner)):
                raise Refused(
                    f"column {column.name!r} is a list of {inner}; only lists of numbers (the "
                    "latent z) are read."
                )
        elif not (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_null(kind)
        ):
            raise Refused(
                f"column {column.name!r} has type {kind}; a run file holds numbers, booleans, "
                "text and lists of numbers."
            )
    return textual


def read(data: bytes, max_rows: int, max_bytes: int) -> Any:
    """The file as an Arrow table of plain (not dictionary) columns, or :class:`Refused`."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    probe = pq.ParquetFile(io.BytesIO(data))
    meta = probe.metadata
    if meta.num_rows > max_rows:
        raise Refused(f"it has {meta.num_rows} rows; at most {max_rows} are imported.")
    textual = _text_columns(probe.schema_arrow)
    packed = values = 0
    for r in range(meta.num_row_groups):
        group = meta.row_group(r)
        for c in range(group.num_columns):
            chunk = group.column(c)
            packed += chunk.total_uncompressed_size
            values += chunk.num_values
    too_big = f"it unpacks to over {max_bytes / 2**20:g} MiB"
    if packed > max_bytes:
        raise Refused(f"{too_big} (page sizes); not imported.")
    if 8 * values > max_bytes:
        raise Refused(f"{too_big} (value counts); not imported.")
    table = pq.ParquetFile(io.BytesIO(data), read_dictionary=textual).read()
    for name in textual:
        column = table.column(name)
        expanded = 0
        for part in column.chunks:
            if pa.types.is_dictionary(part.type):
                lengths = pc.take(pc.binary_length(part.dictionary), part.indices)
            else:
                lengths = pc.binary_length(part)
            expanded += pc.sum(lengths).as_py() or 0
        if expanded > max_bytes:
            raise Refused(f"{too_big} (text of column {name!r}); not imported.")
        if pa.types.is_dictionary(column.type):
            plain = pa.chunked_array(
                [part.dictionary_decode() for part in column.chunks], type=column.type.value_type
            )
            table = table.set_column(table.schema.get_field_index(name), name, plain)
    table.validate(full=True)  # e.g. text that is not UTF-8
    # The pandas metadata is the writer's JSON; it is neither needed nor trusted.
    return table.replace_schema_metadata(None)


def _answer(data: bytes, max_rows: int, max_bytes: int) -> tuple[bytes, bytes]:
    """(status, payload): ``b"T"`` and an Arrow IPC stream, or ``b"R"`` and a refusal."""
    import pyarrow as pa

    try:
        table = read(data, max_rows, max_bytes)
    except Refused as exc:
        return b"R", str(exc).encode()
    except Exception as exc:  # pyarrow raises many types on damaged files
        return b"R", f"{type(exc).__name__}: {exc}".splitlines()[0][:500].encode()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return b"T", sink.getvalue().to_pybytes()


def _read_exactly(stream: Any, n: int) -> bytes | None:
    data = stream.read(n)
    return data if data is not None and len(data) == n else None


def main() -> int:
    """Serve requests until stdin closes: each is an 8-byte length and the file's bytes;
    each answer is a status byte (``T`` table, ``R`` refused), an 8-byte length, a payload."""
    max_rows, max_bytes, memory = (int(v) for v in sys.argv[1:4])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = _read_exactly(source, 8)
        if head is None:
            return 0
        data = _read_exactly(source, int.from_bytes(head, "little"))
        if data is None:
            return 0
        status, payload = _answer(data, max_rows, max_bytes)
        sink.write(status + len(payload).to_bytes(8, "little") + payload)
        sink.flush()


if __name__ == "__main__":
    sys.exit(main())

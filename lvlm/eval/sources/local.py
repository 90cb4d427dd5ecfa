"""Readers for the tasks' original release formats on local disk.

Each reader turns one file into ``RawRecord``/``RecordProblem`` items (see ``lvlm.eval.sources.common``),
with the 1-based physical line number of every record. Readers are registered in ``LOCAL_READERS`` under
the format names a task's ``local.format`` may use (``LocalSource.format``, validated against
``lvlm.eval.tasks.definitions.LOCAL_FORMATS``):

- ``tsv``: tab-separated, quoting disabled (GLUE RTE/MRPC/SST-2 dev files, SNLI/SICK exports);
- ``csv``: comma-separated with standard quoting (LM-BFF SUBJ ``label,text``);
- ``text_label``: ``<text><separator><label>`` split at the last separator (FinancialPhraseBank ``@``,
  the emotion release ``;``);
- ``jsonl``: one JSON object per line (GLUE QQP exports, the built-in smoke sets).

The file is split on ``\\n`` (a trailing ``\\r`` is removed) and decoded line by line with the configured
encoding (ASCII-compatible encodings: utf-8, iso-8859-1, cp1252, ...), so a decode error names its line. A
leading byte-order mark is removed. Under the default ``utf-8``, a file that is not valid UTF-8 is read as
ISO-8859-1 instead (``resolve_encoding``; per file, with a warning, and recorded per task in
``results.json``): the FinancialPhraseBank release files are ISO-8859-1, and reading them as UTF-8 would
fail, or in skip mode drop every non-ASCII sentence. Any other configured encoding is used as given.

Header handling: ``true`` (first line names the columns), ``false`` (``column_names`` name them) or
``auto`` (the first line is a header iff it equals ``column_names``). A configured column that the header
lacks is a fatal ``DataError`` naming line 1.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from lvlm.errors import DataError
from lvlm.eval.sources.common import BLANK_LINE, RawRecord, RecordProblem
from lvlm.eval.tasks.definitions import LocalSource
from lvlm.registry import Registry

Item = RawRecord | RecordProblem
Reader = Callable[[Path, LocalSource], Iterator[Item]]
LOCAL_READERS: Registry[Reader] = Registry("local format")  # names must equal definitions.LOCAL_FORMATS
FALLBACK_ENCODING = "iso-8859-1"  # what a file that is not valid UTF-8 is read as under the default utf-8
log = logging.getLogger(__name__)


def resolve_encoding(path: Path, source: LocalSource) -> LocalSource:
    """``source`` with the encoding ``path`` is read with: ISO-8859-1 when the configured encoding is
    UTF-8 and the file is not valid UTF-8, else the configured one."""
    try:
        utf8 = codecs.lookup(source.encoding).name == "utf-8"
    except LookupError:
        return source  # an unknown codec fails later, naming line 1
    if not utf8:
        return source
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        log.warning(
            "%s is not valid UTF-8 (byte 0x%02x at offset %d); reading it as %s",
            path, err.object[err.start], err.start, FALLBACK_ENCODING,
        )  # fmt: skip
        return dataclasses.replace(source, encoding=FALLBACK_ENCODING)
    return source


def iter_lines(path: Path, encoding: str) -> Iterator[tuple[int, str | RecordProblem]]:
    """Yield ``(line number, decoded text)``; undecodable lines yield a ``RecordProblem`` instead."""
    data = path.read_bytes()
    chunks = data.split(b"\n")
    if chunks and chunks[-1] == b"":
        chunks.pop()
    for number, chunk in enumerate(chunks, start=1):
        raw = chunk[:-1] if chunk.endswith(b"\r") else chunk
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as err:
            problem = f"cannot decode as {encoding} (byte 0x{raw[err.start]:02x} at column {err.start + 1})"
            fix = "set the task's local.encoding to the file's encoding (e.g. iso-8859-1)"
            yield number, RecordProblem(f"line {number}", "bad encoding", problem, fix)
            continue
        yield number, text.removeprefix("\ufeff") if number == 1 else text


def _header_names(first: list[str], source: LocalSource, path: Path) -> tuple[tuple[str, ...], bool]:
    """The column names and whether the first line is a header."""
    cells = tuple(cell.strip() for cell in first)
    if source.header == "true" or (source.header == "auto" and cells == source.column_names):
        names, is_header = cells, True
    else:
        names, is_header = source.column_names, False
    needed = [*source.columns.values(), source.label.column]
    missing = [column for column in needed if column not in names]
    if missing:
        raise DataError(
            str(path),
            f"no column {missing} among the file's columns {list(names)}",
            "map the task's local.columns / label_column to these names (or fix local.column_names)",
            record="line 1",
        )
    return names, is_header


def _cells_record(cells: list[str], names: tuple[str, ...], index: int, number: int, unit: str) -> Item:
    """A record of ``names`` → ``cells``, or a problem naming the expected ``unit`` ("tab-separated" …)."""
    if len(cells) != len(names):
        return RecordProblem(
            f"line {number}",
            "missing column" if len(cells) < len(names) else "extra column",
            f"expected {len(names)} {unit} columns {list(names)}, found {len(cells)}",
            "repair the line (quoting is disabled for tsv: a stray tab splits a field)",
        )
    return RawRecord(index=index, where=f"line {number}", values=dict(zip(names, cells, strict=True)))


def _read_delimited(
    path: Path, source: LocalSource, split: Callable[[str], list[str]], unit: str
) -> Iterator[Item]:
    """Line-based files (``tsv``, ``text_label``): one record per physical line, cut by ``split``."""
    names: tuple[str, ...] | None = None
    index = 0
    for number, text in iter_lines(path, source.encoding):
        if isinstance(text, RecordProblem):
            index += 1
            yield text
            continue
        if not text.strip():
            yield RecordProblem(f"line {number}", BLANK_LINE, "blank line", "")
            continue
        cells = split(text)
        if names is None:
            names, is_header = _header_names(cells, source, path)
            if is_header:
                continue
        yield _cells_record(cells, names, index, number, unit)
        index += 1


@LOCAL_READERS.register("tsv")
def read_tsv(path: Path, source: LocalSource) -> Iterator[Item]:
    """``tsv`` files: tab-separated, quoting disabled."""
    return _read_delimited(path, source, lambda text: text.split("\t"), "tab-separated")


@LOCAL_READERS.register("text_label")
def read_text_label(path: Path, source: LocalSource) -> Iterator[Item]:
    """``text_label`` files: ``<text><separator><label>``, split at the last separator."""
    if not source.separator:
        raise DataError(str(path), "format text_label needs a separator", "set the task's local.separator")

    def split(text: str) -> list[str]:
        body, sep, label = text.rpartition(source.separator)
        return [body, label] if sep else [text]

    return _read_delimited(path, source, split, f"'{source.separator}'-separated")


@LOCAL_READERS.register("csv")
def read_csv(path: Path, source: LocalSource) -> Iterator[Item]:
    """``csv`` files with standard quoting; a quoted field may span lines (record = its first line)."""
    good: list[tuple[int, str]] = []
    for number, text in iter_lines(path, source.encoding):
        if isinstance(text, RecordProblem):
            yield text
        elif not text.strip():
            yield RecordProblem(f"line {number}", BLANK_LINE, "blank line", "")
        else:
            good.append((number, text))
    reader = csv.reader([text + "\n" for _, text in good])
    names: tuple[str, ...] | None = None
    index, consumed = 0, 0
    for cells in reader:
        number = good[consumed][0]  # physical line where this record starts
        consumed = reader.line_num
        if names is None:
            names, is_header = _header_names(cells, source, path)
            if is_header:
                continue
        yield _cells_record(cells, names, index, number, "comma-separated")
        index += 1


@LOCAL_READERS.register("jsonl")
def read_jsonl(path: Path, source: LocalSource) -> Iterator[Item]:
    """``jsonl`` files: each line one JSON object whose keys are the columns."""
    index = 0
    for number, text in iter_lines(path, source.encoding):
        if isinstance(text, RecordProblem):
            index += 1
            yield text
            continue
        if not text.strip():
            yield RecordProblem(f"line {number}", BLANK_LINE, "blank line", "")
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            yield RecordProblem(f"line {number}", "bad json", f"invalid JSON ({err.msg})", "repair the line")
        else:
            if isinstance(obj, dict):
                yield RawRecord(index=index, where=f"line {number}", values=obj)
            else:
                problem = f"expected a JSON object, got {type(obj).__name__}"
                yield RecordProblem(f"line {number}", "bad json", problem, "write one object per line")
        index += 1


def read_local(path: Path, source: LocalSource) -> Iterator[Item]:
    """Read ``path`` with the reader registered for ``source.format``."""
    return LOCAL_READERS.get(source.format)(path, source)

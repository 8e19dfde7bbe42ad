"""Reading import files: CSV or JSON Lines, in UTF-8 (with or without BOM) or Shift_JIS/CP932,
one record at a time, with the record's number for error messages."""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from charset_normalizer import from_bytes
from django.utils.translation import gettext as _

SAMPLE_BYTES = 256 * 1024


class FileFormatError(Exception):
    """The file cannot be read past `row` (1-based data row; 0 for the header)."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(f"row {row}: {message}")
        self.row = row
        self.message = message


def detect_encoding(sample: bytes) -> str:
    """'utf-8-sig' for a BOM, 'utf-8' when the sample decodes as UTF-8, 'cp932' for
    Japanese legacy files (CP932 is the superset of Shift_JIS that Excel writes), else
    what charset-normalizer finds."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start > len(sample) - 4:  # a character cut by the end of the sample
            try:
                sample[: exc.start].decode("utf-8")
                return "utf-8"
            except UnicodeDecodeError:
                pass
    try:
        sample.decode("cp932")
        return "cp932"
    except UnicodeDecodeError:
        pass
    best = from_bytes(sample).best()
    return best.encoding if best is not None else "utf-8"


@dataclass
class Table:
    columns: list[str]
    rows: Iterator[tuple[int, dict[str, Any]]]
    encoding: str
    format: str


def sniff_format(name: str, sample: str) -> str:
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "jsonl" if sample.lstrip().startswith("{") else "csv"


def open_table(source: str | Path | IO[bytes], *, name: str = "", fmt: str = "") -> Table:
    """Open a CSV or JSON Lines file for reading (a path or a binary stream)."""
    stream: IO[bytes] = open(source, "rb") if isinstance(source, str | Path) else source  # noqa: SIM115
    name = name or str(source if isinstance(source, str | Path) else getattr(source, "name", ""))
    sample = stream.read(SAMPLE_BYTES)
    stream.seek(0)
    encoding = detect_encoding(sample)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    fmt = fmt or sniff_format(name, sample[:1000].decode(encoding, errors="ignore"))
    if fmt == "jsonl":
        return Table(columns=[], rows=_jsonl_rows(text), encoding=encoding, format="jsonl")
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        header = []
    except (csv.Error, UnicodeDecodeError) as exc:
        raise FileFormatError(0, str(exc)) from exc
    columns = [c.strip() for c in header]
    return Table(columns=columns, rows=_csv_rows(reader, columns), encoding=encoding, format="csv")


def _csv_rows(reader: Any, columns: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    number = 0
    while True:
        start_line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileFormatError(
                number + 1,
                _("broken CSV at line %(line)d (a quote is not closed or is misplaced): %(e)s")
                % {"line": start_line, "e": exc},
            ) from exc
        except UnicodeDecodeError as exc:
            raise FileFormatError(number + 1, _("not readable text: %(e)s") % {"e": exc}) from exc
        number += 1
        if not values or values == [""]:
            continue
        if len(values) > len(columns):
            raise FileFormatError(
                number,
                _("%(n)d values but the header has %(h)d columns (line %(line)d)")
                % {"n": len(values), "h": len(columns), "line": start_line},
            )
        yield number, dict(zip(columns, values, strict=False))


def _jsonl_rows(text: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FileFormatError(number, _("malformed JSON: %(e)s") % {"e": exc.msg}) from exc
        if not isinstance(value, dict):
            raise FileFormatError(number, _("each line must be a JSON object"))
        yield number, value

"""The Japanese catalogue is complete and the compiled .mo matches the .po that is committed."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

LOCALE = Path(__file__).resolve().parents[2] / "locale"
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _unquote(lines: list[str]) -> str:
    text = "".join(_STRING.findall("\n".join(lines)))
    return text.encode().decode("unicode_escape").encode("latin-1").decode("utf-8")


def _entries(po: Path) -> list[dict]:
    entries = []
    for block in po.read_text(encoding="utf-8").split("\n\n"):
        fields: dict[str, list[str]] = {}
        current = None
        flags = ""
        for line in block.splitlines():
            if line.startswith("#,"):
                flags = line
            elif line.startswith("#"):
                continue
            elif line.startswith(("msgctxt", "msgid", "msgstr")):
                current, _, rest = line.partition(" ")
                fields[current] = [rest]
            elif line.startswith('"') and current:
                fields[current].append(line)
        if "msgid" in fields:
            entries.append({k: _unquote(v) for k, v in fields.items()} | {"flags": flags})
    return entries


def test_japanese_catalogue_is_complete_and_compiled() -> None:
    po = LOCALE / "ja" / "LC_MESSAGES" / "django.po"
    with (LOCALE / "ja" / "LC_MESSAGES" / "django.mo").open("rb") as mo_file:
        compiled = gettext.GNUTranslations(mo_file)
    entries = [e for e in _entries(po) if e["msgid"]]
    assert len(entries) > 300
    missing = [e["msgid"] for e in entries if "msgid_plural" not in e and not e.get("msgstr")]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    assert missing == []
    assert fuzzy == []
    stale = []
    for e in entries:
        if "msgid_plural" in e:
            continue
        got = (
            compiled.pgettext(e["msgctxt"], e["msgid"])
            if "msgctxt" in e
            else compiled.gettext(e["msgid"])
        )
        if got != e["msgstr"]:
            stale.append(e["msgid"])
    assert stale == []

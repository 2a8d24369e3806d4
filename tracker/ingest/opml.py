"""OPML import and export of feed lists: a hardened streaming parse and a grouped export."""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit
from xml.parsers import expat

from tracker.domain import FEED_KINDS, language_code

MAX_OPML_BYTES = 50 * 1024 * 1024
# Characters XML 1.0 cannot carry plus C0/C1 controls: they only ever arrive as noise.
CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
WHITESPACE = re.compile(r"\s+")
TAG_SEPARATORS = re.compile(r"[,/]")
# The encoding an XML declaration in ASCII bytes names (a UTF-16 file with a BOM has none
# readable here, and expat reads it itself).
DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
# What expat decodes itself; any other declared encoding is decoded here first, as expat
# refuses multi-byte ones (Shift_JIS, EUC-JP, GB2312, Big5) with a bare ValueError.
EXPAT_ENCODINGS = {
    "utf-8",
    "utf8",
    "utf-16",
    "utf16",
    "iso-8859-1",
    "latin-1",
    "latin1",
    "us-ascii",
}
ATTRIBUTE_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\n": "&#10;",
        "\r": "&#13;",
        "\t": "&#9;",
    }
)


class OpmlError(Exception):
    """The file cannot be read as OPML at all (as opposed to single outlines being skipped)."""


@dataclass(frozen=True)
class OpmlFeed:
    url: str
    title: str | None
    tags: tuple[str, ...]
    kind: str | None
    language: str | None


@dataclass(frozen=True)
class OpmlParseResult:
    feeds: list[OpmlFeed] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_capped(path: Path, max_bytes: int = MAX_OPML_BYTES) -> bytes:
    """A file's bytes, reading no more than the cap: a multi-gigabyte file is refused
    (OpmlError) without filling memory. Raises OSError when the file cannot be read."""
    with path.open("rb") as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OpmlError(f"OPML file is larger than the limit of {_megabytes(max_bytes)}")
    return data


def parse_opml(data: bytes, max_bytes: int = MAX_OPML_BYTES) -> OpmlParseResult:
    """Read feeds from OPML; outlines that cannot be used are skipped and named in `problems`.

    Raises OpmlError for input that is too large, not well-formed, declares a DOCTYPE
    (the door to entity expansion and external entities), or is not OPML.
    """
    if len(data) > max_bytes:
        raise OpmlError(
            f"OPML file is {_megabytes(len(data))}; the limit is {_megabytes(max_bytes)}"
        )
    reader = _OutlineReader()
    try:
        reader.parser.Parse(_readable_by_expat(data), True)
    except expat.ExpatError as exc:
        reason = expat.ErrorString(exc.code)
        raise OpmlError(
            f"not well-formed XML at line {exc.lineno}, column {exc.offset + 1}: {reason}"
        ) from None
    except LookupError as exc:  # expat asks Python for the declared encoding, which may not exist
        raise OpmlError(f"the XML declares an encoding Python cannot read: {exc}") from None
    return OpmlParseResult(feeds=reader.feeds, problems=reader.problems)


def _readable_by_expat(data: bytes) -> bytes:
    """The document in an encoding expat reads: as it is, or decoded from the encoding its
    declaration names and given to expat as UTF-8 under a declaration that says so."""
    declared = DECLARED_ENCODING.match(data)
    if declared is None or declared.group(1).decode().lower() in EXPAT_ENCODINGS:
        return data
    name = declared.group(1).decode()
    if name.lower().replace("-", "").replace("_", "") == "utf7":
        # Decoded, "+ADw-" is "<": markup hidden from anything that reads the bytes as ASCII.
        raise OpmlError("the XML declares UTF-7, which is not accepted; save the file as UTF-8")
    try:
        text = data.decode(name)
    except LookupError:
        raise OpmlError(f"the XML declares an encoding Python cannot read: {name}") from None
    except UnicodeDecodeError as exc:
        raise OpmlError(
            f"the file is not valid {name} (the encoding it declares): "
            f"{exc.reason} at byte {exc.start}"
        ) from None
    start, end = declared.span(1)
    # The declaration is ASCII, so its offsets in the bytes are its offsets in the text.
    return (text[:start] + "UTF-8" + text[end:]).encode("utf-8")


class _OutlineReader:
    """Expat callbacks that turn outlines into feeds while tracking the category path.

    Streaming with expat keeps 10,000-feed files cheap and lets us refuse a DOCTYPE before
    any entity in it could be expanded.
    """

    def __init__(self) -> None:
        self.feeds: list[OpmlFeed] = []
        self.problems: list[str] = []
        self._first_outline_by_url: dict[str, int] = {}
        self._path: list[tuple[str, ...]] = []  # tags contributed by each open outline
        self._outline_count = 0
        self._root_seen = False
        self.parser = expat.ParserCreate()
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartDoctypeDeclHandler = self._refuse_doctype
        self.parser.EntityDeclHandler = self._refuse_doctype
        self.parser.ExternalEntityRefHandler = self._refuse_doctype
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end

    def _refuse_doctype(self, *_: object) -> NoReturn:
        raise OpmlError(
            f"line {self.parser.CurrentLineNumber}: DOCTYPE and ENTITY declarations are not "
            "allowed in OPML (they enable entity-expansion attacks)"
        )

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        if not self._root_seen:
            self._root_seen = True
            if _local(name) != "opml":
                raise OpmlError(f"not an OPML document: the root element is <{name}>")
        if _local(name) != "outline":
            return
        self._outline_count += 1
        lowered = {key.lower(): value for key, value in attrs.items()}
        if "xmlurl" in lowered:
            self._add_feed(lowered)
            self._path.append(())
        else:
            self._path.append(split_tags(lowered.get("text") or lowered.get("title") or ""))

    def _end(self, name: str) -> None:
        if _local(name) == "outline":
            self._path.pop()

    def _add_feed(self, attrs: dict[str, str]) -> None:
        url = attrs["xmlurl"].strip()
        problem = _url_problem(url)
        if problem:
            self._problem(f"xmlUrl {_quoted(url)} {problem}")
            return
        first = self._first_outline_by_url.setdefault(_url_key(url), self._outline_count)
        if first != self._outline_count:
            self._problem(f"xmlUrl {_quoted(url)} repeats outline {first}; the first was kept")
            return
        path_tags = tuple(tag for level in self._path for tag in level)
        feed = OpmlFeed(
            url=url,
            title=_title(attrs, url),
            tags=_dedupe(path_tags + split_tags(attrs.get("category", ""))),
            kind=self._kind(attrs.get("rtkind")),
            language=self._language(attrs.get("language")),
        )
        self.feeds.append(feed)

    def _kind(self, raw: str | None) -> str | None:
        kind = (raw or "").strip().lower()
        if kind and kind not in FEED_KINDS:
            self._problem(f"rtKind {_quoted(kind)} is not one of {', '.join(FEED_KINDS)}; ignored")
            return None
        return kind or None

    def _language(self, raw: str | None) -> str | None:
        language = (raw or "").strip()
        # Kept as the file writes it (an export reads back the same); stored normalised.
        if language and language_code(language) is None:
            self._problem(f"language {_quoted(language)} is not a language tag; ignored")
            return None
        return language or None

    def _problem(self, message: str) -> None:
        line = self.parser.CurrentLineNumber
        self.problems.append(f"outline {self._outline_count} (line {line}): {message}")


def export_opml(feeds: Iterable[OpmlFeed], title: str = "Rumour Tracker feeds") -> bytes:
    """OPML 2.0 in UTF-8, feeds grouped under their first tag; `parse_opml` reads it back."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        f"  <head>\n    <title>{_text_node(title)}</title>\n  </head>",
        "  <body>",
    ]
    for group, members in _group_by_first_tag(feeds).items():
        if group is None:
            lines.extend(f"    {_feed_outline(feed, rest)}" for feed, rest in members)
            continue
        lines.append(f"    <outline text={_attr(group)} title={_attr(group)}>")
        lines.extend(f"      {_feed_outline(feed, rest)}" for feed, rest in members)
        lines.append("    </outline>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines).encode("utf-8")


def split_tags(value: str) -> tuple[str, ...]:
    """Tags from a category string: split on commas and `/` path separators, lower-cased.

    Outline texts go through the same split so that no tag contains `,` or `/`, which is
    what lets an exported `category` attribute read back as the same tags.
    """
    parts = (_clean(part).lower() for part in TAG_SEPARATORS.split(value))
    return _dedupe(tuple(part for part in parts if part))


def _group_by_first_tag(
    feeds: Iterable[OpmlFeed],
) -> dict[str | None, list[tuple[OpmlFeed, tuple[str, ...]]]]:
    groups: dict[str | None, list[tuple[OpmlFeed, tuple[str, ...]]]] = {}
    for feed in feeds:
        tags = _dedupe(tuple(tag for raw in feed.tags for tag in split_tags(raw)))
        group, rest = (tags[0], tags[1:]) if tags else (None, ())
        groups.setdefault(group, []).append((feed, rest))
    return groups


def _feed_outline(feed: OpmlFeed, other_tags: tuple[str, ...]) -> str:
    title = _clean(feed.title or "")
    # Readers display `text`, so a feed without a title shows its URL; _title maps it back.
    attributes = [("type", "rss"), ("text", title or feed.url)]
    if title:
        attributes.append(("title", title))
    attributes.append(("xmlUrl", feed.url))
    if other_tags:
        attributes.append(("category", ",".join(other_tags)))
    if feed.kind:
        attributes.append(("rtKind", feed.kind))
    if feed.language:
        attributes.append(("language", feed.language))
    return "<outline " + " ".join(f"{name}={_attr(value)}" for name, value in attributes) + "/>"


def _attr(value: str) -> str:
    return '"' + CONTROL_CHARS.sub("", value).translate(ATTRIBUTE_ESCAPES) + '"'


def _text_node(value: str) -> str:
    return _clean(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _title(attrs: dict[str, str], url: str) -> str | None:
    # `title` wins over `text`, as in Miniflux; a "title" that is just the URL carries nothing.
    title = _clean(attrs.get("title") or "") or _clean(attrs.get("text") or "")
    return title if title and title != url else None


def _url_problem(url: str) -> str | None:
    if not url:
        return "is empty"
    if WHITESPACE.search(url) or CONTROL_CHARS.search(url):
        return "contains whitespace or control characters"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "is not http(s)"
    if not parts.hostname:
        return "has no host"
    return None


def _url_key(url: str) -> str:
    # Scheme and host are case-insensitive; path and query are not.
    parts = urlsplit(url)
    return parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()


def _clean(value: str) -> str:
    return WHITESPACE.sub(" ", CONTROL_CHARS.sub("", value)).strip()


def _dedupe(tags: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(tags))


def _local(name: str) -> str:
    return name.rpartition(":")[2].lower()


def _quoted(value: str, limit: int = 200) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"

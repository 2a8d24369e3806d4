"""ClaimReview fact-checks (schema.org JSON-LD) read as a stream of items; no database here.

A file is one JSON document (a ClaimReview, an array of them, an object with "@graph", or
Google's DataFeed export: dataFeedElement -> DataFeedItem -> item) or an HTML page whose
<script type="application/ld+json"> blocks hold such documents. JSON is read incrementally
(ijson), so a feed of a gigabyte never sits in memory: only one record at a time does.

Records are numbered from 1 in file order: every ClaimReview, and every non-object where a record
belongs (the root, an element of the root array, of "@graph", "dataFeedElement" or "item").
Other typed objects (a page's WebPage or Organization in "@graph") pass without a number.
"""

import codecs
import functools
import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from io import BytesIO
from typing import Any, BinaryIO

import ijson

from tracker.domain import ParsedEntry
from tracker.ingest.dedupe import text_fingerprint
from tracker.ingest.parse import canonical_url

# Keys whose values hold further records rather than fields of one record: JSON-LD's "@graph",
# the DataFeed's "dataFeedElement" and each DataFeedItem's "item" (one review or a list).
CONTAINER_KEYS = frozenset({"@graph", "dataFeedElement", "item"})
# Past this nesting the input is hostile or broken; it would only exhaust Python's stack.
MAX_DEPTH = 64
CHUNK = 1 << 16
# A feed's reviews come from a few fact-checkers: their urls need canonicalising once each.
_checker_url = functools.lru_cache(maxsize=1024)(canonical_url)

Event = tuple[str, Any]


class MalformedJsonError(ValueError):
    """The document as a whole is not JSON: nothing after the break can be read."""


class BadRecordError(ValueError):
    """One record cannot become an item; the records around it still can."""


@dataclass(frozen=True)
class Record:
    label: str  # "record 17" or "script block 2", for messages
    value: Any
    problem: str | None = None


@dataclass(frozen=True)
class Review:
    feed_url: str | None  # the fact-checker's own url (author, else publisher), when given
    entry: ParsedEntry


def records(handle: BinaryIO) -> Iterator[Record]:
    """The records of a JSON or HTML file, read incrementally from a seekable binary handle.
    Raises MalformedJsonError where a JSON document breaks off (records before it are yielded)."""
    start, first = _start(handle)
    if not first and handle.read(1) == b"":
        raise MalformedJsonError("the file holds no JSON")
    handle.seek(start)
    if first == b"<":
        yield from _html_records(handle)
    else:
        yield from _Walker(handle, itertools.count(1)).records()


def _start(handle: BinaryIO) -> tuple[int, bytes]:
    head = handle.read(CHUNK)
    # A byte-order mark is not JSON; the parser would stop at it.
    start = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    return start, head[start:].lstrip()[:1]


def _first_line(exc: Exception) -> str:
    # The parser's message goes on with a picture of the input around the error.
    raw = exc.args[0] if exc.args else str(exc)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text.strip().splitlines()[0] if text.strip() else "not JSON"


class _Walker:
    """Turns parser events into records, building only one record's value at a time."""

    def __init__(self, source: BinaryIO, numbers: Iterator[int]) -> None:
        self._events: Iterator[Event] = ijson.basic_parse(source, use_float=True)
        self._numbers = numbers

    def records(self) -> Iterator[Record]:
        try:
            # ijson refuses a second top-level value itself ("trailing garbage").
            for event, value in self._events:
                yield from self._slot(event, value, 0)
        except ijson.JSONError as exc:
            raise MalformedJsonError(_first_line(exc)) from exc

    def _slot(self, event: str, value: Any, depth: int) -> Iterator[Record]:
        """A value where records may be: the root, or under a container key."""
        _check_depth(depth)
        if event == "start_map":
            yield from self._map(depth)
        elif event == "start_array":
            for inner, inner_value in self._until("end_array"):
                yield from self._slot(inner, inner_value, depth + 1)
        else:
            yield self._record(value)

    def _map(self, depth: int) -> Iterator[Record]:
        fields: dict[str, Any] = {}
        for _, key in self._until("end_map"):
            event, value = next(self._events)
            if key in CONTAINER_KEYS:
                yield from self._slot(event, value, depth + 1)
            else:
                fields[key] = self._value(event, value, depth + 1)
        if is_review(fields):
            yield self._record(fields)
        else:
            # A page's Article or WebPage may carry its ClaimReview as mainEntity or review.
            yield from (self._record(found) for found in _nested_reviews(fields))

    # The hot path of a large feed: every event of every record passes through these three, so
    # they read the parser directly rather than through _until.
    def _value(self, event: str, value: Any, depth: int) -> Any:
        if event == "start_map":
            return self._built_map(depth + 1)
        if event == "start_array":
            return self._built_array(depth + 1)
        return value

    def _built_map(self, depth: int) -> dict[str, Any]:
        _check_depth(depth)
        built: dict[str, Any] = {}
        for kind, key in self._events:
            if kind == "end_map":
                break
            built[key] = self._value(*next(self._events), depth)
        return built

    def _built_array(self, depth: int) -> list[Any]:
        _check_depth(depth)
        built: list[Any] = []
        for kind, value in self._events:
            if kind == "end_array":
                break
            built.append(self._value(kind, value, depth))
        return built

    def _until(self, end: str) -> Iterator[Event]:
        for event, value in self._events:
            if event == end:
                return
            yield event, value

    def _record(self, value: Any) -> Record:
        return Record(f"record {next(self._numbers)}", value)


def _check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise MalformedJsonError(f"nested deeper than {MAX_DEPTH} levels")


def is_review(fields: dict[str, Any]) -> bool:
    raw = fields.get("@type")
    names = raw if isinstance(raw, list) else [raw]
    # "ClaimReview", "schema:ClaimReview" and "http://schema.org/ClaimReview" are one type.
    types = {n.rsplit("/", 1)[-1].rsplit(":", 1)[-1] for n in names if isinstance(n, str)}
    return "ClaimReview" in types or (not types and "claimReviewed" in fields)


def _nested_reviews(value: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    if depth > MAX_DEPTH:
        return
    children = value.values() if isinstance(value, dict) else value
    for child in children if isinstance(value, dict | list) else ():
        if isinstance(child, dict) and is_review(child):
            yield child
        else:
            yield from _nested_reviews(child, depth + 1)


class _LdJsonScripts(HTMLParser):
    """Collects the text of <script type="application/ld+json"> blocks as they close."""

    def __init__(self) -> None:
        super().__init__()
        self.done: list[str] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kind = (dict(attrs).get("type") or "").split(";")[0].strip().lower()
        if tag == "script" and kind == "application/ld+json":
            self._open = []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._open is not None:
            self.done.append("".join(self._open))
            self._open = None

    def take(self) -> list[str]:
        done, self.done = self.done, []
        return done


def _html_records(handle: BinaryIO) -> Iterator[Record]:
    # Pages are taken as UTF-8, as JSON-LD must be; a stray byte becomes U+FFFD, not an error.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    parser, numbers, blocks = _LdJsonScripts(), itertools.count(1), itertools.count(1)
    while chunk := handle.read(CHUNK):
        parser.feed(decoder.decode(chunk))
        for text in parser.take():
            yield from _block_records(text, next(blocks), numbers)
    parser.feed(decoder.decode(b"", final=True))
    parser.close()
    for text in parser.take():
        yield from _block_records(text, next(blocks), numbers)


def _block_records(text: str, block: int, numbers: Iterator[int]) -> Iterator[Record]:
    """One script block's records; a broken block is one problem, not the end of the page."""
    try:
        yield from _Walker(BytesIO(text.encode()), numbers).records()
    except MalformedJsonError as exc:
        yield Record(f"script block {block}", None, f"malformed JSON: {exc}")


def review(value: Any) -> Review:
    """One ClaimReview as an item of its fact-checker's feed; BadRecordError says why not."""
    if not isinstance(value, dict):
        raise BadRecordError(f"not a JSON object but {_json_type(value)}")
    claim = _text(value, "claimReviewed")
    title = _text(value, "headline") or _text(value, "name") or claim
    if not title:
        raise BadRecordError("needs a 'claimReviewed' or a 'headline'")
    feed_url, publisher = _fact_checker(value)
    url = _url(value, "url", "url")
    summary = _summary(claim, _claimant(value), _verdict(value))
    content_hash = _sha256(f"{title}\n{summary}")
    identity = f"{claim or title}\x1f{publisher}\x1f{_text(value, 'datePublished')}"
    entry = ParsedEntry(
        dedupe_key=(url or f"claimreview:{_sha256(identity)}")[:2000],
        guid=None,
        url=url,
        title=title,
        summary=summary,
        language=_language(value),
        published_at=_date(value, "datePublished"),
        content_hash=content_hash,
        text_hash=text_fingerprint(title, summary),
    )
    return Review(feed_url, entry)


def _fact_checker(value: dict[str, Any]) -> tuple[str | None, str]:
    """The reviewing organisation's url, and the url or name that identifies it."""
    orgs = [_organisation(value, key) for key in ("author", "publisher")]
    url = next((found for found, _ in orgs if found), None)
    return url, url or next((name for _, name in orgs if name), "")


def _organisation(value: dict[str, Any], key: str) -> tuple[str | None, str]:
    org = value.get(key)
    org = org[0] if isinstance(org, list) and org else org
    if isinstance(org, str):
        return None, org.strip()
    if org is None or org == []:
        return None, ""
    if not isinstance(org, dict):
        raise BadRecordError(f"'{key}' must be an object, not {_json_type(org)}")
    return _url(org, "url", f"{key}.url", _checker_url), _text(org, "name", f"{key}.name")


def _claimant(value: dict[str, Any]) -> str:
    claim = _object(value, "itemReviewed")
    author = claim.get("author")
    author = author[0] if isinstance(author, list) and author else author
    if isinstance(author, dict):
        return _text(author, "name", "itemReviewed.author.name")
    return author.strip() if isinstance(author, str) else ""


def _verdict(value: dict[str, Any]) -> str:
    rating = _object(value, "reviewRating")
    verdict = _text(rating, "alternateName", "reviewRating.alternateName")
    verdict = verdict or _text(rating, "name", "reviewRating.name")
    score, best = rating.get("ratingValue"), rating.get("bestRating")
    if verdict or score in (None, ""):
        return verdict
    return f"{score}/{best}" if best not in (None, "") else str(score)


def _summary(claim: str, claimant: str, verdict: str) -> str:
    parts = [f"Claim: {claim}" if claim else ""]
    parts.append(f"(by {claimant})" if claim and claimant else "")
    parts.append(f"Verdict: {verdict}" if verdict else "")
    return " ".join(part for part in parts if part)


def _language(value: dict[str, Any]) -> str | None:
    raw = value.get("inLanguage")
    if isinstance(raw, dict):  # a schema.org Language: its code is the alternateName
        return _text(raw, "alternateName", "inLanguage") or _text(raw, "name", "inLanguage") or None
    return _text(value, "inLanguage") or None


def _object(value: dict[str, Any], key: str) -> dict[str, Any]:
    found = value.get(key)
    found = found[0] if isinstance(found, list) and found else found
    if found in (None, "", []):
        return {}
    if not isinstance(found, dict):
        raise BadRecordError(f"'{key}' must be an object, not {_json_type(found)}")
    return found


def _text(row: dict[str, Any], key: str, label: str | None = None) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRecordError(f"'{label or key}' must be text, not {_json_type(value)}")
    return value.replace("\x00", "").strip()


def _url(
    row: dict[str, Any],
    key: str,
    label: str,
    canonical: Callable[[str | None], str | None] = canonical_url,
) -> str | None:
    raw = _text(row, key, label)
    if not raw:
        return None
    url = canonical(raw)
    if url is None:
        raise BadRecordError(f"'{label}' must be an http(s) URL, not {raw[:200]!r}")
    return url


def _date(row: dict[str, Any], key: str) -> datetime | None:
    raw = _text(row, key)
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRecordError(f"'{key}' is not an ISO 8601 date: {raw[:100]!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()

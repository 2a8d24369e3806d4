"""Each item's language, set before it is stored: the language its text is written in when the
detector is sure (classifiers.language), else the entry's declared one, else its feed's.

Stored in `items.language`, it is what search (the stemming configuration), the filters, the
alerts and the pages read, so a Romanian statement in a feed tagged `en` is Romanian
everywhere. tracker.pipeline.language_backfill gives items stored before this the same
treatment.
"""

import dataclasses

from classifiers import language
from tracker.domain import ParsedEntry


def with_language(entry: ParsedEntry, feed_language: str | None) -> ParsedEntry:
    text = language.item_text(entry.title, entry.summary)
    return dataclasses.replace(entry, language=language.detect(text, entry.language, feed_language))

"""Text normalisation, tokens and cue lexicons shared by both models."""

import re
import unicodedata
from collections.abc import Sequence

WORD = re.compile(r"\w+", re.UNICODE)
LINK = re.compile(r"(?:https?://|www\.|pic\.twitter\.com/)\S+|@\w+|#", re.IGNORECASE)

_STOPWORDS_TEXT = """
a an the and or but of to in on at by for with from as is are was were be been being it its this
that these those has have had will would can could may might should not no than then there their
they them he she his her we our you your i into over under about after before also more most said
says say new just up out all any some which who whom what when where how si și sa să la de pe cu
din în in ca că ce care un o unei unui una este sunt fost fi nu mai ar au al ale lui lor le se sau
iar dar dupa după pentru despre prin acest aceasta această acum fara fără intre între
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

# Cue phrases by family; matched on accent-folded lower-case text. English, Romanian, Ukrainian,
# Russian. They give the model a language-independent signal the n-grams alone learn slowly.
# fmt: off
CUES: dict[str, tuple[str, ...]] = {
    # Prefixes where one stem covers a family ("fals" matches false/falsă, "dezmint" dezminte);
    # no cue contains another, so no word counts twice.
    "denial": (
        "fals", "fake", "denies", "denied", "deny", "dismiss", "debunk", "misleading", "not true",
        "no evidence", "clarif", "fact check", "fact-check", "untrue", "hoax", "refute",
        "rejects", "dezmint", "nu este adevarat", "preciz", "neadevar", "infirma", "спростов",
        "неправд", "фейк", "опроверг", "ложн", "не соответствует",
    ),
    "attribution": (
        "sources say", "according to sources", "insiders", "reportedly", "allegedly",
        "unconfirmed", "leaked", "circula", "rumour", "rumor", "claims", "surse", "neconfirmat",
        "se pare", "ar fi", "ar urma", "джерела", "источник", "кажуть", "говорят", "якобы",
        "нібито",
    ),
    "hedging": (
        "could", "may have", "might", "possibly", "secret", "hidden", "cover-up", "cover up",
        "ascund", "posibil", "ar putea", "таємн", "тайн", "возможно",
    ),
    "official": (
        "ministry", "minister", "press release", "statement", "spokesperson", "spokesman",
        "authorities", "government", "comunicat", "purtator de cuvant", "guvernul",
        "autoritatile", "mapn", "міністерство", "министерство", "заява", "заявление",
    ),
}
# fmt: on


# One alternation per family: a single scan instead of one str.count per cue. No cue contains
# another, so the counts are those of counting each cue on its own.
_CUE_PATTERNS = {
    family: re.compile("|".join(re.escape(cue) for cue in cues)) for family, cues in CUES.items()
}


def fold(text: str) -> str:
    """Lower-case and strip accents so ș/ş/s and ț/ţ/t match alike."""
    if text.isascii():  # nothing to strip, and most items are: skip the slow path
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def strip_links(text: str) -> str:
    """Drop URLs, @handles and hash signs: they name where a text is, not what it says."""
    return LINK.sub(" ", text)


def content_words(text: str) -> list[str]:
    """Accent-folded words worth matching on: no stop words, no single letters."""
    return worth_matching(WORD.findall(fold(text)))


def worth_matching(words: Sequence[str]) -> list[str]:
    """The words of `words` (already folded and split) that `content_words` keeps."""
    return [w for w in words if w not in STOPWORDS and (len(w) > 2 or w.isdigit())]


def cue_counts(folded: str) -> dict[str, int]:
    """How often each family's cues occur in a text already through `fold`."""
    return {family: len(pattern.findall(folded)) for family, pattern in _CUE_PATTERNS.items()}


# Concepts shared across languages, each with the accent-folded word stems that name it in
# English, Romanian, Ukrainian and Russian. Lexical features see nothing in common between
# "missions over Ukraine" and "misiuni deasupra Ucrainei"; mapped to concepts, they do.
# fmt: off
_CONCEPTS: dict[str, tuple[str, ...]] = {
    "aircraft": ("aircraft", "plane", "jet", "avion", "avioan", "aeronav", "литак", "самолет"),
    "fighter": ("fighter", "vanator", "винищув", "истребит"),
    "mission": ("mission", "misiun", "sortie", "місі", "мисси"),
    "secret": ("secret", "covert", "ascuns", "таємн", "секрет", "тайн"),
    "border": ("border", "frontier", "granit", "кордон", "границ"),
    "army": ("army", "armat", "troop", "soldier", "soldat", "military", "militar", "військ",
             "армі", "арми", "войск"),
    "defence": ("defence", "defense", "apara", "mapn", "оборон"),
    "ministry": ("ministr", "міністер", "министер"),
    "government": ("government", "guvern", "уряд", "правительств"),
    "president": ("president", "presedint", "президент"),
    "ukraine": ("ukrain", "ucrain", "україн", "украин"),
    "russia": ("russia", "rusia", "rusesc", "rusi", "росі", "росси"),
    "romania": ("romania", "roman", "румун"),
    "moldova": ("moldov", "молдов"),
    "nato": ("nato", "нато"),
    "missile": ("missile", "rachet", "racheta", "ракет"),
    "drone": ("drone", "drona", "dron", "дрон", "беспилот", "безпілот"),
    "attack": ("attack", "atac", "strike", "атак", "удар"),
    "base": ("base", "baza", "база"),
    "exercise": ("exercise", "drill", "exercitiu", "exercitii", "навчан", "учени"),
    "mobilisation": ("mobilis", "mobiliz", "mobilizar", "reservist", "rezervist", "мобіліз",
                     "мобилиз"),
    "draft": ("draft", "conscript", "recrut", "призов"),
    "war": ("war", "razboi", "війн", "войн"),
    "airspace": ("airspace", "spatiul aerian", "spatiu aerian", "повітрян", "воздушн"),
    "vaccine": ("vaccin", "вакцин"),
    "virus": ("virus", "вірус"),
    "hospital": ("hospital", "spital", "лікарн", "больниц"),
    "doctor": ("doctor", "medic", "лікар", "врач"),
    "health": ("health", "sanatat", "здоров"),
    "epidemic": ("epidemic", "outbreak", "pandemic", "focar", "епідем", "эпидем", "пандем"),
    "disease": ("disease", "boala", "boli", "хвороб", "болезн"),
    "water": ("water", "apa ", "apei", "вода", "води"),
    "contaminated": ("contamin", "poisoned", "otravit", "toxic", "отру", "отрав"),
    "death": ("dead", "death", "died", "killed", "mort", "decedat", "deces", "загин", "помер",
              "погиб", "умер"),
    "election": ("election", "alegeri", "electoral", "vote", "voting", "vot", "вибор", "выбор",
                 "голосув", "голосов"),
    "ballot": ("ballot", "buletin", "бюлетен", "бюллетен"),
    "polling": ("polling", "sectii de votare", "sectie de votare", "дільниц", "участк"),
    "fraud": ("fraud", "frauda", "rigged", "fraudat", "фальсиф", "шахрай", "мошен"),
    "results": ("result", "rezultat", "результат"),
    "candidate": ("candidat", "кандидат"),
    "cancelled": ("cancel", "anulat", "anular", "postpon", "amanat", "скасов", "отмен"),
    "earthquake": ("earthquake", "quake", "cutremur", "землетрус"),
    "flood": ("flood", "inunda", "повін", "наводн"),
    "fire": ("fire", "wildfire", "incendi", "пожеж", "пожар"),
    "storm": ("storm", "furtun", "шторм", "буря"),
    "dam": ("dam ", "baraj", "дамб", "гребл", "плотин"),
    "evacuation": ("evacua", "евакуа", "эвакуа"),
    "emergency": ("emergenc", "urgent", "isu", "igsu", "надзвичай", "чрезвычай"),
    "warning": ("warning", "alert", "avertiz", "cod rosu", "попередж", "предупрежд"),
    "radiation": ("radiation", "radiati", "nuclear", "радіац", "радиац", "ядерн"),
    "power": ("power cut", "blackout", "electricity", "curent", "electric", "енерг", "электр"),
    "fuel": ("fuel", "petrol", "benzin", "carburant", "motorin", "пальн", "топлив"),
    "shortage": ("shortage", "lipsa", "penurie", "дефіцит", "дефицит"),
    "price": ("price", "pret", "preturi", "ціна", "цін", "цена", "цен"),
    "bank": ("bank", "banca", "банк"),
    "salary": ("salar", "wage", "зарплат"),
    "pension": ("pension", "pensi", "пенсі", "пенси"),
    "tax": ("tax", "taxa", "impozit", "податк", "налог"),
    "school": ("school", "scoal", "scoli", "школ"),
    "closed": ("closed", "closure", "inchis", "закрит", "закрыт"),
    "video": ("video", "footage", "clip", "відео", "видео"),
    "photo": ("photo", "image", "picture", "fotograf", "imagin", "фото"),
    "fake": ("fake", "false", "fals", "hoax", "фейк", "неправд", "ложн"),
    "city": ("city", "oras", "municip", "місто", "город"),
    "police": ("police", "politi", "поліц", "полиц"),
    "bridge": ("bridge", "pod ", "podul", "міст", "мост"),
    "port": ("port", "harbour", "harbor", "порт"),
    "grain": ("grain", "cereal", "wheat", "grau", "зерн"),
    "refugee": ("refugee", "refugiat", "біженц", "беженц"),
}
# fmt: on
STEM_CONCEPT = tuple((stem, concept) for concept, stems in _CONCEPTS.items() for stem in stems)


def concepts(text: str) -> frozenset[str]:
    """The cross-language concepts a text mentions (see _CONCEPTS)."""
    padded = f" {' '.join(WORD.findall(fold(text)))} "
    return frozenset(concept for stem, concept in STEM_CONCEPT if f" {stem}" in padded)

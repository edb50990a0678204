"""Our battle corpus: hand-written exchanges and verses, one TOML file per topic.

Each file holds one topic:

    topic = "cars"

    [[exchange]]
    id = "cars-001"                  # <topic>-<number>, unique
    opponent = ["bar", "bar"]        # the opponent's couplet
    comeback = ["bar", "bar"]        # the answer to it
    tactics = ["flip-rhyme", "turn-anchor"]
    anchors = ["hatchback", "door"]  # opponent words the comeback answers
    # explicit = true, clean = ["bar", "bar"]   (profanity only with a clean alternative)

    [[verse]]
    id = "cars-v01"
    bars = ["bar", "bar", "bar", "bar"]

The held-out split is fixed by each exchange's id (a hash), so adding items never
moves an existing exchange between the splits.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

CORPUS_DIR = Path(__file__).parent

TACTICS = {
    "flip-rhyme": "the comeback ends on the opponent's end-rhyme sound",
    "turn-anchor": "the comeback takes an opponent's name, place or object and turns it on them",
    "callback": "the comeback returns to something said earlier",
    "punchline": "the twist lands on the last syllables",
    "wordplay": "a double meaning or pun",
    "multi": "multi-syllable rhymes stacked at the ends or inside the bars",
}

HELDOUT_PERCENT = 10

_ID = re.compile(r"^[a-z][a-z0-9-]*-(v?)\d{2,4}$")


class CorpusError(ValueError):
    """A corpus file that cannot be read as the schema above says; the message names file and item."""


@dataclass(frozen=True)
class Exchange:
    id: str
    topic: str
    opponent: tuple[str, ...]
    comeback: tuple[str, ...]
    tactics: tuple[str, ...]
    anchors: tuple[str, ...]
    explicit: bool = False
    clean: tuple[str, ...] = ()

    @property
    def heldout(self) -> bool:
        return is_heldout(self.id)


@dataclass(frozen=True)
class Verse:
    id: str
    topic: str
    bars: tuple[str, ...]


@dataclass(frozen=True)
class Corpus:
    exchanges: tuple[Exchange, ...]
    verses: tuple[Verse, ...]
    files: tuple[Path, ...] = field(default=())

    @property
    def topics(self) -> list[str]:
        return sorted({e.topic for e in self.exchanges} | {v.topic for v in self.verses})

    def bars(self) -> list[str]:
        """Every bar, opponent and comeback alike (clean alternatives not counted twice)."""
        out = []
        for e in self.exchanges:
            out += [*e.opponent, *e.comeback]
        for v in self.verses:
            out += v.bars
        return out

    def train(self) -> "Corpus":
        """Everything but the held-out exchanges (verses are all training material)."""
        return Corpus(tuple(e for e in self.exchanges if not e.heldout), self.verses, self.files)

    def heldout(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.heldout]

    def split_validation(self, percent: int = 5) -> tuple["Corpus", "Corpus"]:
        """(rest, validation): a second hash split of these exchanges, for choosing a
        checkpoint without looking at the benchmark's held-out split."""
        val = tuple(e for e in self.exchanges if _bucket("val:" + e.id) < percent)
        rest = tuple(e for e in self.exchanges if _bucket("val:" + e.id) >= percent)
        return Corpus(rest, self.verses, self.files), Corpus(val, (), self.files)


def _bucket(key: str) -> int:
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:4], "big") % 100


def is_heldout(item_id: str) -> bool:
    return _bucket(item_id) < HELDOUT_PERCENT


def _bars(value, where: str, n: int | None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(b, str) and b.strip() for b in value):
        raise CorpusError(f"{where}: expected a list of non-empty strings (bars)")
    if n is not None and len(value) != n:
        raise CorpusError(f"{where}: expected {n} bars, found {len(value)}")
    return tuple(b.strip() for b in value)


def _words(value, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(b, str) and b.strip() for b in value):
        raise CorpusError(f"{where}: expected a non-empty list of strings")
    return tuple(v.strip() for v in value)


def load_file(path: Path) -> tuple[list[Exchange], list[Verse]]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise CorpusError(f"{path}: not valid TOML ({e})") from None
    topic = data.get("topic")
    if topic != Path(path).stem:
        raise CorpusError(f"{path}: topic = {topic!r} must equal the file name ({Path(path).stem!r})")
    unknown = set(data) - {"topic", "exchange", "verse"}
    if unknown:
        raise CorpusError(f"{path}: unknown keys {sorted(unknown)} (expected topic, [[exchange]], [[verse]])")
    exchanges, verses = [], []
    for i, item in enumerate(data.get("exchange", [])):
        where = f"{path}: exchange {item.get('id', f'#{i + 1}')}"
        extra = set(item) - {"id", "opponent", "comeback", "tactics", "anchors", "explicit", "clean"}
        if extra:
            raise CorpusError(f"{where}: unknown keys {sorted(extra)}")
        item_id = item.get("id", "")
        if not _ID.match(item_id) or not item_id.startswith(topic + "-") or "-v" in item_id[len(topic):]:
            raise CorpusError(f"{where}: id must look like '{topic}-001'")
        tactics = _words(item.get("tactics"), f"{where}: tactics")
        bad = [t for t in tactics if t not in TACTICS]
        if bad:
            raise CorpusError(f"{where}: unknown tactics {bad}; known: {', '.join(TACTICS)}")
        explicit = item.get("explicit", False)
        if not isinstance(explicit, bool):
            raise CorpusError(f"{where}: explicit must be true or false")
        clean = _bars(item["clean"], f"{where}: clean", 2) if "clean" in item else ()
        exchanges.append(Exchange(
            item_id, topic,
            _bars(item.get("opponent"), f"{where}: opponent", 2),
            _bars(item.get("comeback"), f"{where}: comeback", 2),
            tactics, _words(item.get("anchors"), f"{where}: anchors"), explicit, clean))
    for i, item in enumerate(data.get("verse", [])):
        where = f"{path}: verse {item.get('id', f'#{i + 1}')}"
        extra = set(item) - {"id", "bars"}
        if extra:
            raise CorpusError(f"{where}: unknown keys {sorted(extra)}")
        item_id = item.get("id", "")
        if not _ID.match(item_id) or not item_id.startswith(topic + "-v"):
            raise CorpusError(f"{where}: id must look like '{topic}-v01'")
        verses.append(Verse(item_id, topic, _bars(item.get("bars"), f"{where}: bars", 4)))
    return exchanges, verses


def load(directory: Path | str = CORPUS_DIR, files: list[Path] | None = None) -> Corpus:
    """Every topic file in `directory` (or just `files`), validated against the schema."""
    paths = sorted(Path(p) for p in files) if files else sorted(Path(directory).glob("*.toml"))
    exchanges: list[Exchange] = []
    verses: list[Verse] = []
    seen: dict[str, Path] = {}
    for path in paths:
        ex, vs = load_file(path)
        for item in [*ex, *vs]:
            if item.id in seen:
                raise CorpusError(f"{path}: id {item.id} is also used in {seen[item.id]}")
            seen[item.id] = path
        exchanges += ex
        verses += vs
    return Corpus(tuple(exchanges), tuple(verses), tuple(paths))

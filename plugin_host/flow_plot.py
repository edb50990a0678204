"""A picture of a flow: bars down, 16th steps across, syllables coloured by rhyme family."""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from dsp import phonetics
from dsp.flow import Performance
from plugin_host.files import atomic_path

_GREY = "#d9d9d9"
# tab10 without its grey, so a family never looks like "no family".
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
# Function words rhyme by accident ("a" / "the"); colouring them would hide the real rhymes.
_FUNCTION_WORDS = frozenset(
    "a an the and or but so to of in on at by for from with as is are was were be been am i you he she it we they "
    "me him her us them my your his its our their this that these those i'm you're it's do does did not no".split()
)


def _family_key(word: str) -> tuple[str, ...]:
    # Slant classes, so "medal" and "metal" share a colour as a listener hears them.
    return phonetics.slant_key(phonetics.rhyme_key(phonetics.word(word)))


def rhyme_families(words: Sequence[str]) -> dict[str, int]:
    """word -> family index, for rhyme keys shared by at least two different words."""
    by_key: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for w in words:
        if w in _FUNCTION_WORDS:
            continue
        key = _family_key(w)
        if key:
            by_key[key].add(w)
    families = [k for k, ws in by_key.items() if len(ws) >= 2]
    families.sort(key=lambda k: min(words.index(w) for w in by_key[k]))
    return {w: i for i, k in enumerate(families) for w in by_key[k]}


def plot_flow(path, performances: Sequence[tuple[str, Performance]], title: str = "") -> None:
    """Write a PNG (atomically): one row per bar, labelled with who raps it.

    `performances`: (label, Performance) in order; their bars are stacked top to bottom.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(label, p, b) for label, p in performances for b in range(len(p.bars))]
    all_words = [s.word for _, p in performances for s in p.syllables]
    families = rhyme_families(all_words)
    steps = max(p.flow.steps_per_bar for _, p in performances)
    fig, ax = plt.subplots(figsize=(max(8.0, steps * 0.75), 0.9 + 0.55 * len(rows)), dpi=110)
    for r, (label, perf, bar) in enumerate(rows):
        y = len(rows) - 1 - r
        for step, mark in enumerate(perf.flow.pattern):
            if step % 4 == 0:
                ax.add_patch(plt.Rectangle((step, y), 4, 1, fill=False, lw=0.6, ec="#999999"))
            if mark == "X":
                ax.add_patch(plt.Rectangle((step, y), 1, 1, color="#f4f4f4", zorder=0))
        sylls = [s for s in perf.syllables if s.bar == bar]
        for s in sylls:
            word = phonetics.word(s.word)
            key_start = len(word.syllables) - _rhyme_syllables(word)
            fam = families.get(s.word)
            colour = _PALETTE[fam % len(_PALETTE)] if fam is not None and s.syllable_index >= key_start else _GREY
            ax.add_patch(plt.Rectangle((s.step + 0.05, y + 0.1), 0.9, 0.8, color=colour, zorder=1))
            text = s.word if s.syllable_index == 0 else "~"
            ax.text(s.step + 0.5, y + 0.5, text, ha="center", va="center", fontsize=7 if len(text) < 8 else 5.5,
                    rotation=0 if len(text) < 6 else 30, zorder=2)
        ax.text(-0.3, y + 0.5, f"{label} {bar + 1}", ha="right", va="center", fontsize=8)
    ax.set_xlim(0, steps)
    ax.set_ylim(0, len(rows))
    ax.set_xticks([i + 0.5 for i in range(steps)])
    ax.set_xticklabels([str(i // 4 + 1) if i % 4 == 0 else "·" for i in range(steps)], fontsize=8)
    ax.set_yticks([])
    ax.set_xlabel("16th steps (beat numbers; shaded = accent slots; colour = rhyme family)")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _rhyme_syllables(word: phonetics.Word) -> int:
    """How many of a word's final syllables its rhyme key spans."""
    key = phonetics.rhyme_key(word)
    return sum(1 for p in key if p in phonetics.VOWELS)

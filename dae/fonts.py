"""Text from outside (a song's name) as the installed fonts can draw it, for every picture.

A character the default font lacks is drawn in the first installed font that
has it; one that no font has becomes MISSING_GLYPH, so matplotlib never warns
of a missing glyph and a title keeps all it can show.
"""
import functools

MISSING_GLYPH = "?"            # drawn for a character no installed font has
LAST_RESORT = "Last Resort High-Efficiency"   # matplotlib's font of placeholder boxes: not a glyph of the text


def _default_font():
    """The file of the font matplotlib draws text in by default."""
    from matplotlib import font_manager
    return font_manager.findfont(font_manager.FontProperties())


@functools.lru_cache(maxsize=None)
def _characters(font_file):
    """The code points a font file has glyphs for."""
    from matplotlib import font_manager
    return frozenset(font_manager.get_font(font_file).get_charmap())


@functools.lru_cache(maxsize=None)
def _fonts():
    """(family, file) of the installed scalable fonts that can stand in for the default one, in a fixed order."""
    from matplotlib import font_manager
    default = _default_font()
    return tuple(sorted({(f.name, f.fname) for f in font_manager.fontManager.ttflist
                         if f.fname != default and f.name != LAST_RESORT and _scalable(f.fname)}))


def _scalable(font_file):
    """Whether matplotlib can draw text in this font file at any size (not a bitmap font such as a
    colour emoji font, nor a file it cannot read)."""
    from matplotlib import font_manager
    try:
        return bool(font_manager.get_font(font_file).scalable)
    except (OSError, RuntimeError, ValueError):
        return False


@functools.lru_cache(maxsize=None)
def _family_for(char):
    """The family of the font to draw `char` in: "" for the default font, None when no installed font has it."""
    if ord(char) in _characters(_default_font()):
        return ""
    return next((family for family, file in _fonts() if ord(char) in _characters(file)), None)


def drawable(text):
    """`text` as the installed fonts can draw it: (text, font families for matplotlib's `fontfamily`).

    A character the default font lacks is drawn in the first installed font that has it (a fallback
    family after the default ones); one that no font has becomes MISSING_GLYPH. So drawing it warns
    of no missing glyph, and the text keeps everything that can be shown."""
    import matplotlib
    shown, extra = [], []
    for char in str(text):
        family = _family_for(char) if char.isprintable() and not char.isspace() else ""
        shown.append(MISSING_GLYPH if family is None else char)
        if family and family not in extra:
            extra.append(family)
    families = list(matplotlib.rcParams["font.family"])
    return "".join(shown), families + [f for f in extra if f not in families]


def put_text(draw, text, *args, **kwargs):
    """Draw outside `text` (a title with a song's name) with matplotlib's `draw` (fig.suptitle, ax.set_title,
    fig.text, ...; `args` come before the text, e.g. fig.text's x and y) as `drawable` makes it."""
    shown, families = drawable(text)
    return draw(*args, shown, fontfamily=families, **kwargs)

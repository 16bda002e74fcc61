"""A CJK font for plots with Chinese labels, when one is installed (`make system-deps` brings
WenQuanYi Micro Hei); plots fall back to feature names without one, so they render anywhere."""

from __future__ import annotations

import os

CJK_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
CJK_NAMES = ("WenQuanYi Micro Hei", "Noto Sans CJK JP")


def cjk_font() -> str | None:
    """The name of an installed CJK font, added to matplotlib by path (its font cache may predate the
    font), or None."""
    import matplotlib.font_manager

    for path in CJK_FONTS:
        if os.path.exists(path):
            matplotlib.font_manager.fontManager.addfont(path)
    found = [f.name for f in matplotlib.font_manager.fontManager.ttflist if f.name in CJK_NAMES]
    return found[0] if found else None

"""The brand defaults every surface starts from (one home: the render's request model, the
brand kit, the panels): the end card's background and the karaoke highlight."""

BRAND_COLOUR = "#111111"  # the end card's background
HIGHLIGHT_COLOUR = "#FFD400"  # the word being said, in karaoke subtitles
TEXT_COLOUR = "#FFFFFF"
DEFAULT_COLOURS = (BRAND_COLOUR, HIGHLIGHT_COLOUR)  # a new brand kit's colours

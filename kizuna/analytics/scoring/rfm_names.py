"""The RFM segments' names and the R × F grid (`rfm`), apart from its NumPy code: the app's
models (loaded by every `django.setup()`) name the segments without importing NumPy."""

CHAMPIONS = "champions"
LOYAL = "loyal"
POTENTIAL = "potential_loyalists"
NEW = "new"
PROMISING = "promising"
NEED_ATTENTION = "need_attention"
ABOUT_TO_SLEEP = "about_to_sleep"
AT_RISK = "at_risk"
CANNOT_LOSE = "cannot_lose_them"
HIBERNATING = "hibernating"
LOST = "lost"

# In display order: best relationships first.
SEGMENTS = (
    CHAMPIONS,
    LOYAL,
    POTENTIAL,
    NEW,
    PROMISING,
    NEED_ATTENTION,
    ABOUT_TO_SLEEP,
    AT_RISK,
    CANNOT_LOSE,
    HIBERNATING,
    LOST,
)

# GRID[R - 1][F - 1]
GRID: tuple[tuple[str, ...], ...] = (
    (LOST, HIBERNATING, AT_RISK, AT_RISK, CANNOT_LOSE),  # R = 1
    (HIBERNATING, HIBERNATING, AT_RISK, AT_RISK, CANNOT_LOSE),  # R = 2
    (ABOUT_TO_SLEEP, ABOUT_TO_SLEEP, NEED_ATTENTION, LOYAL, LOYAL),  # R = 3
    (PROMISING, POTENTIAL, POTENTIAL, LOYAL, LOYAL),  # R = 4
    (NEW, POTENTIAL, POTENTIAL, CHAMPIONS, CHAMPIONS),  # R = 5
)

"""Date and number formats per language (settings.FORMAT_MODULE_PATH = "kizuna.formats").

Japanese: 2026年11月22日, 2026年11月22日 10:30, 2026年11月; English keeps Django's own
formats. Money is not formatted here: yen have no minor
unit and `kizuna.core.money.format_money` prints them without decimals (¥12,345).
"""

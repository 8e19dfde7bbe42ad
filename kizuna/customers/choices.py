from __future__ import annotations

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _


class Gender(TextChoices):
    UNSPECIFIED = "unspecified", _("Not specified")
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")


class Locale(TextChoices):
    JA = "ja", _("Japanese")
    EN = "en", _("English")


class IdentityKind(TextChoices):
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    LINE = "line", _("LINE user ID")
    EXTERNAL = "external", _("External ID")
    ANONYMOUS = "anonymous", _("Anonymous ID")


class ConsentPurpose(TextChoices):
    MARKETING = "marketing", _("Marketing messages")
    ANALYTICS = "analytics", _("Analytics")
    PERSONALISATION = "personalisation", _("Personalisation")
    THIRD_PARTY = "third_party", _("Provision to third parties")


class ConsentChannel(TextChoices):
    EMAIL = "email", _("Email")
    LINE = "line", _("LINE")
    SMS = "sms", _("SMS")
    PHONE = "phone", _("Phone")
    POST = "post", _("Post")
    ANY = "any", _("Any channel")


class ConsentStatus(TextChoices):
    GRANTED = "granted", _("Granted")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class LegalBasis(TextChoices):
    CONSENT = "consent", _("Consent")
    CONTRACT = "contract", _("Contract")
    LEGITIMATE_INTEREST = "legitimate_interest", _("Legitimate interest")
    LEGAL_OBLIGATION = "legal_obligation", _("Legal obligation")


class TraitType(TextChoices):
    STRING = "string", _("Text")
    NUMBER = "number", _("Number")
    INTEGER = "integer", _("Integer")
    BOOLEAN = "boolean", _("Yes/no")
    DATE = "date", _("Date")
    CHOICE = "choice", _("Choice")


# ISO 3166-2:JP codes with their names; a first-class field for segments and analytics.
PREFECTURES: list[tuple[str, str, str]] = [
    ("JP-01", "北海道", "Hokkaido"),
    ("JP-02", "青森県", "Aomori"),
    ("JP-03", "岩手県", "Iwate"),
    ("JP-04", "宮城県", "Miyagi"),
    ("JP-05", "秋田県", "Akita"),
    ("JP-06", "山形県", "Yamagata"),
    ("JP-07", "福島県", "Fukushima"),
    ("JP-08", "茨城県", "Ibaraki"),
    ("JP-09", "栃木県", "Tochigi"),
    ("JP-10", "群馬県", "Gunma"),
    ("JP-11", "埼玉県", "Saitama"),
    ("JP-12", "千葉県", "Chiba"),
    ("JP-13", "東京都", "Tokyo"),
    ("JP-14", "神奈川県", "Kanagawa"),
    ("JP-15", "新潟県", "Niigata"),
    ("JP-16", "富山県", "Toyama"),
    ("JP-17", "石川県", "Ishikawa"),
    ("JP-18", "福井県", "Fukui"),
    ("JP-19", "山梨県", "Yamanashi"),
    ("JP-20", "長野県", "Nagano"),
    ("JP-21", "岐阜県", "Gifu"),
    ("JP-22", "静岡県", "Shizuoka"),
    ("JP-23", "愛知県", "Aichi"),
    ("JP-24", "三重県", "Mie"),
    ("JP-25", "滋賀県", "Shiga"),
    ("JP-26", "京都府", "Kyoto"),
    ("JP-27", "大阪府", "Osaka"),
    ("JP-28", "兵庫県", "Hyogo"),
    ("JP-29", "奈良県", "Nara"),
    ("JP-30", "和歌山県", "Wakayama"),
    ("JP-31", "鳥取県", "Tottori"),
    ("JP-32", "島根県", "Shimane"),
    ("JP-33", "岡山県", "Okayama"),
    ("JP-34", "広島県", "Hiroshima"),
    ("JP-35", "山口県", "Yamaguchi"),
    ("JP-36", "徳島県", "Tokushima"),
    ("JP-37", "香川県", "Kagawa"),
    ("JP-38", "愛媛県", "Ehime"),
    ("JP-39", "高知県", "Kochi"),
    ("JP-40", "福岡県", "Fukuoka"),
    ("JP-41", "佐賀県", "Saga"),
    ("JP-42", "長崎県", "Nagasaki"),
    ("JP-43", "熊本県", "Kumamoto"),
    ("JP-44", "大分県", "Oita"),
    ("JP-45", "宮崎県", "Miyazaki"),
    ("JP-46", "鹿児島県", "Kagoshima"),
    ("JP-47", "沖縄県", "Okinawa"),
]
PREFECTURE_CHOICES = [(code, ja) for code, ja, _en in PREFECTURES]
PREFECTURE_NAMES_EN = {code: en for code, _ja, en in PREFECTURES}

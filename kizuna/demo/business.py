"""The fixed facts of the demo business, Kizuna Coffee (絆珈琲): menu, stores, traits."""

from __future__ import annotations

from dataclasses import dataclass

BUSINESS_NAME = "Kizuna Coffee"
BUSINESS_NAME_JA = "絆珈琲"
SKU_PREFIX = "KC-"
ORDER_PREFIX = "KC-"
SOURCE = "demo"


@dataclass(frozen=True)
class MenuItem:
    sku: str
    name: str
    name_en: str
    category: str
    price: int  # yen
    weight: float  # how often it is chosen within its category
    months: tuple[int, ...] = ()  # seasonal: only sold in these months


CATEGORIES: list[tuple[str, str, str]] = [
    ("drinks", "ドリンク", "Drinks"),
    ("beans", "コーヒー豆", "Coffee beans"),
    ("food", "フード", "Food"),
    ("goods", "グッズ", "Goods"),
]

MENU: list[MenuItem] = [
    MenuItem("KC-D01", "本日のドリップコーヒー", "Drip coffee of the day", "drinks", 390, 10),
    MenuItem("KC-D02", "カフェラテ", "Caffè latte", "drinks", 480, 12),
    MenuItem("KC-D03", "カプチーノ", "Cappuccino", "drinks", 480, 6),
    MenuItem("KC-D04", "抹茶ラテ", "Matcha latte", "drinks", 520, 8),
    MenuItem("KC-D05", "ほうじ茶ラテ", "Hojicha latte", "drinks", 500, 6),
    MenuItem("KC-D06", "コールドブリュー", "Cold brew", "drinks", 450, 6),
    MenuItem("KC-D07", "アイスコーヒー", "Iced coffee", "drinks", 400, 7),
    MenuItem("KC-D08", "カフェモカ", "Caffè mocha", "drinks", 540, 4),
    MenuItem("KC-D09", "キャラメルマキアート", "Caramel macchiato", "drinks", 560, 5),
    MenuItem("KC-D10", "アメリカーノ", "Americano", "drinks", 420, 6),
    MenuItem("KC-D11", "エスプレッソ", "Espresso", "drinks", 350, 2),
    MenuItem("KC-D12", "チャイラテ", "Chai latte", "drinks", 520, 3),
    MenuItem("KC-D13", "オーツミルクラテ", "Oat milk latte", "drinks", 550, 4),
    MenuItem("KC-D14", "ホットチョコレート", "Hot chocolate", "drinks", 480, 2),
    MenuItem("KC-D15", "さくらラテ", "Sakura latte", "drinks", 580, 6, (3, 4)),
    MenuItem("KC-D16", "ゆずシトラスティー", "Yuzu citrus tea", "drinks", 520, 5, (12, 1, 2)),
    MenuItem("KC-B01", "絆ブレンド 200g", "Kizuna blend 200 g", "beans", 1480, 10),
    MenuItem(
        "KC-B02", "エチオピア イルガチェフェ 200g", "Ethiopia Yirgacheffe 200 g", "beans", 1980, 4
    ),
    MenuItem("KC-B03", "ブラジル サントス 200g", "Brazil Santos 200 g", "beans", 1380, 5),
    MenuItem("KC-B04", "コロンビア スプレモ 200g", "Colombia Supremo 200 g", "beans", 1580, 4),
    MenuItem("KC-B05", "グアテマラ アンティグア 200g", "Guatemala Antigua 200 g", "beans", 1680, 3),
    MenuItem("KC-B06", "ケニア AA 200g", "Kenya AA 200 g", "beans", 2080, 2),
    MenuItem("KC-B07", "デカフェ ブレンド 200g", "Decaf blend 200 g", "beans", 1680, 2),
    MenuItem("KC-B08", "ドリップバッグ 10袋", "Drip bags (10)", "beans", 1200, 6),
    MenuItem("KC-F01", "クロワッサン", "Croissant", "food", 320, 8),
    MenuItem("KC-F02", "抹茶スコーン", "Matcha scone", "food", 350, 5),
    MenuItem("KC-F03", "ベイクドチーズケーキ", "Baked cheesecake", "food", 480, 5),
    MenuItem("KC-F04", "バナナブレッド", "Banana bread", "food", 380, 4),
    MenuItem("KC-F05", "たまごサンド", "Egg sandwich", "food", 480, 7),
    MenuItem("KC-F06", "ハムとチーズのサンド", "Ham and cheese sandwich", "food", 520, 5),
    MenuItem("KC-F07", "あんバタートースト", "Anko butter toast", "food", 420, 4),
    MenuItem("KC-F08", "どら焼き", "Dorayaki", "food", 280, 3),
    MenuItem("KC-F09", "チョコチップクッキー", "Chocolate chip cookie", "food", 250, 5),
    MenuItem("KC-F10", "季節のフルーツタルト", "Seasonal fruit tart", "food", 560, 3),
    MenuItem("KC-G01", "絆タンブラー", "Kizuna tumbler", "goods", 2800, 4),
    MenuItem("KC-G02", "波佐見焼マグカップ", "Hasami-ware mug", "goods", 1800, 4),
    MenuItem("KC-G03", "ステンレスボトル", "Stainless bottle", "goods", 3200, 3),
    MenuItem("KC-G04", "ハンドドリップセット", "Hand-drip set", "goods", 3500, 2),
    MenuItem("KC-G05", "キャンバストートバッグ", "Canvas tote bag", "goods", 1500, 3),
    MenuItem("KC-G06", "ギフトカード 3,000円", "Gift card ¥3,000", "goods", 3000, 3),
    MenuItem("KC-G07", "セラミック手挽きミル", "Ceramic hand grinder", "goods", 6800, 1),
]

# Physical stores, each with its home prefecture; online shop and app are channels.
STORES: list[tuple[str, str]] = [
    ("渋谷店", "JP-13"),
    ("新宿店", "JP-13"),
    ("表参道店", "JP-13"),
    ("丸の内店", "JP-13"),
    ("横浜みなとみらい店", "JP-14"),
    ("名古屋栄店", "JP-23"),
    ("京都三条店", "JP-26"),
    ("梅田店", "JP-27"),
    ("神戸元町店", "JP-28"),
    ("天神店", "JP-40"),
    ("札幌大通店", "JP-01"),
]
ONLINE_STORE = "オンラインショップ"
APP_STORE = "公式アプリ"

# Where customers live: big cities first (ISO 3166-2:JP), the rest shared across Japan.
PREFECTURE_WEIGHTS: dict[str, float] = {
    "JP-13": 30,
    "JP-14": 11,
    "JP-27": 11,
    "JP-11": 6,
    "JP-12": 5,
    "JP-23": 6,
    "JP-40": 7,
    "JP-28": 4,
    "JP-26": 3.5,
    "JP-01": 3.5,
}
OTHER_PREFECTURES_WEIGHT = 13.0

CITIES: dict[str, list[str]] = {
    "JP-13": [
        "渋谷区",
        "新宿区",
        "港区",
        "世田谷区",
        "目黒区",
        "杉並区",
        "中野区",
        "品川区",
        "文京区",
        "武蔵野市",
    ],
    "JP-14": ["横浜市西区", "横浜市港北区", "川崎市中原区", "藤沢市", "鎌倉市"],
    "JP-27": ["大阪市北区", "大阪市中央区", "吹田市", "豊中市", "堺市堺区"],
    "JP-11": ["さいたま市大宮区", "川口市", "所沢市"],
    "JP-12": ["千葉市中央区", "船橋市", "柏市", "浦安市"],
    "JP-23": ["名古屋市中区", "名古屋市千種区", "豊田市"],
    "JP-40": ["福岡市中央区", "福岡市博多区", "北九州市小倉北区"],
    "JP-28": ["神戸市中央区", "西宮市", "姫路市"],
    "JP-26": ["京都市中京区", "京都市左京区", "宇治市"],
    "JP-01": ["札幌市中央区", "札幌市北区", "旭川市"],
}

EMAIL_DOMAINS = ["example.jp", "example.com", "example.net", "example.org"]

TRAITS: list[dict] = [
    {
        "key": "favourite_drink",
        "label": "好きなドリンク",
        "type": "choice",
        "choices": [
            "drip",
            "latte",
            "cappuccino",
            "matcha_latte",
            "hojicha_latte",
            "cold_brew",
            "americano",
        ],
        "description": "Favourite drink (from the app profile)",
    },
    {
        "key": "milk_preference",
        "label": "ミルクの好み",
        "type": "choice",
        "choices": ["whole", "low_fat", "soy", "oat", "none"],
        "description": "Milk preference",
    },
    {
        "key": "newsletter_frequency",
        "label": "ニュースレター頻度",
        "type": "choice",
        "choices": ["weekly", "monthly", "never"],
        "description": "How often the customer wants the newsletter",
    },
]

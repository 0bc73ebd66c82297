"""Guess a resident's language from short chat messages, and decide which language to use.

Pure Python (no Telegram, no database). Signals, strongest first: the script (Arabic, Cyrillic),
letters only one offered language uses (ğ ı ş, ą ę ł ń ś ź ż), short word lists of frequent
function words, greetings and survey vocabulary (also without diacritics), Turkish suffixes after
an apostrophe ("Overvecht'te"), Latin-script Arabic (Arabizi: "3afak", "bzaf"), and a character
n-gram model built from langdetect's profiles. The n-gram model scores every n-gram once instead
of sampling them as langdetect does, so it needs no seed and gives the same answer in every
process. Dutch place names are removed first: they are no evidence of any language.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import langdetect
from langdetect.utils.ngram import NGram

UNKNOWN = "unknown"

# Where each language's letters come from; anything not listed is written in Latin script.
SCRIPT_OF = {
    "ar": "arabic",
    "fa": "arabic",
    "ur": "arabic",
    "uk": "cyrillic",
    "bg": "cyrillic",
    "ru": "cyrillic",
    "mk": "cyrillic",
    "he": "hebrew",
    "ti": "ethiopic",
    "am": "ethiopic",
}
# Languages with an established Latin-script chat form, scored from word lists only.
LATIN_CHAT_FORM = frozenset({"ar"})

# Latin-script languages heard in the focus areas that buurtstem does not offer (yet): when one
# of them clearly fits a message better, the answer is "unknown" rather than a forced guess.
DEFAULT_OTHERS: tuple[str, ...] = ("de", "fr", "es", "pt", "it", "ro", "so")
# Dutch is the most likely language in the focus areas; the weight is gentle (e^0.9 ≈ 2.5x).
DEFAULT_PRIORS: Mapping[str, float] = {"nl": 2.5}

# Names that say where someone lives, not which language they write: the 20 focus areas, their
# municipalities and neighbourhoods (domain brief). Callers add their own via `place_names`.
DEFAULT_PLACE_NAMES: tuple[str, ...] = (
    "Nederland", "Holland", "Leeuwarden", "Leeuwarden-Oost", "Bilgaard", "Vrijheidswijk",
    "Oud-Oost", "Heechterp", "Schieringen", "Heechterp-Schieringen", "Camminghaburen",
    "Groningen", "Vinkhuizen", "Paddepoel", "Selwerd", "De Hoogte", "Indische Buurt", "Beijum",
    "Lewenborg", "Arnhem", "Klarendal", "Geitenkamp", "Presikhaaf", "Malburgen", "Arnhemse Broek",
    "Heerlen", "Heerlerheide", "Hoensbroek", "Breda", "Hoge Vucht", "Eindhoven", "Woensel",
    "Woensel-Zuid", "Tilburg", "Stokhasselt", "Heikant", "Quirijnstok", "Schiedam", "Nieuwland",
    "Rotterdam", "Rotterdam-Zuid", "Feijenoord", "Afrikaanderwijk", "Bloemhof", "Hillesluis",
    "Oud-Charlois", "Charlois", "Carnisse", "Tarwewijk", "Den Haag", "'s-Gravenhage",
    "Bouwlust", "Vrederust", "Morgenstond", "Moerwijk", "Amsterdam", "Zuidoost", "Bijlmer",
    "Bijlmermeer", "Nieuw-West", "Zaandam", "Zaanstad", "Poelenburg", "Peldersveld",
    "Kogerveld", "Rosmolenwijk", "Lelystad", "Zuiderzeewijk", "Atolwijk", "Boswijk",
    "Waterwijk", "Utrecht", "Overvecht", "Kanaleneiland", "Nieuwegein", "Batau", "Zuilenstein",
    "Jutphaas", "Wijkersloot", "Merwestein", "Fokkesteeg", "Vlaardingen", "Westwijk", "Delft",
    "Voorhof", "Buitenhof", "Tanthof", "Dordrecht", "Krispijn", "Oud-Krispijn",
    "Nieuw-Krispijn", "Wielwijk", "Crabbehof", "Roosendaal", "Westrand", "Kalsdonk",
    "Langdonk", "Kroeven", "De Kroeven",
)  # fmt: skip

# Frequent function words, greetings and survey vocabulary, written without diacritics (the
# lookup folds the resident's text the same way). Strong: hardly used by the other offered
# languages; weak: common but shared or short. A word in several lists gives evidence to each.
_TIER_WEIGHT = {"strong": 4.0, "weak": 1.5}
_WORDS: dict[str, dict[str, str]] = {
    "nl": {
        "strong": "ja hallo meer woon ik het een niet niks geen wij jullie mijn m'n z'n heel erg ook maar nog wel heb "
        "heeft hebben wordt worden kunnen moet moeten zou weet weten goed slecht graag bedankt "
        "dank dankje dankjewel dankuwel doei hoi hoor goedemorgen goedemiddag goedenavond "
        "goedendag klopt jawel nee omdat want deze daar waar wanneer waarom altijd nooit "
        "soms vaak buurt wijk straat buren overlast rommel afval vuil vies troep zwerfafval "
        "gemeente jongeren hangjongeren onveilig veilig parkeren parkeerplek parkeerplekken "
        "lawaai herrie fiets kinderen ouderen speeltuin eigenlijk gewoon echt beetje "
        "iedereen niemand mensen ff idd zegge gasten tevreden ontevreden misschien mee oneens "
        "eens achteruit vooruit geluidsoverlast jongens sinds uur wat hoe jij zijn weer "
        "enquete vragen antwoord uitslag stoep zitten komen komt gaat doet doen zeggen nou",
        "weak": "je er van voor met op aan bij naar door om uit dan als die dat dit hier "
        "de in is te we ze prima politie was had wa da nie drugs alles flat zo al en",
    },
    "en": {
        "strong": "hello the and you you're they it's this that there here not yes yeah yep nope thanks "
        "thank thx tnx please pls plz sorry hey bye good bad morning evening very much many "
        "people kids children street neighbours neighbors neighbour neighbor rubbish litter trash "
        "garbage noise noisy loud dirty safe unsafe night dealing parking car bike stolen dunno "
        "idk tbh don't dont can't cant what how where when who why of for with from are be have "
        "has does will would should could nothing everything always never sometimes just really "
        "sure maybe fine agree guess comment idea area place building since too i'm im "
        "lights someone nobody our their my am feel live need more get got answer english "
        "dutch think lot near every",
        "weak": "a i is in it to on at no we hi was had u ya me do can drugs police so ok",
    },
    "tr": {
        "strong": "evet hayir yok var biz siz onlar bir cok ve ama icin ile gibi daha neden nasil "
        "nerede burada burda orada simdi sonra hep hic herkes kimse merhaba selam selamlar "
        "tesekkurler tesekkur ederim sagol sagolun gunaydin iyi kotu guzel aksamlar geceler "
        "iyiyim bilmiyorum biliyorum abi abla yani olsun olur lazim degil mahalle sokak komsu "
        "komsular cop pis gece aksam cocuk cocuklar genc gencler araba arabalar uyusturucu "
        "gurultu tehlikeli guvenli belediye bence kesinlikle katiliyorum belki tamam insallah oturuyorum yasiyorum "
        "masallah kolay gelsin fikrim mi mu bu su ne artik kimin olsa",
        "weak": "ben sen o ya de da en polis park",
    },
    "pl": {
        "strong": "tak nie jest sa sie ze jak co czy ale juz bardzo dziekuje dzieki prosze czesc "
        "dzien dobry dobrze wieczor spoko mam masz mamy nic wszystko wszedzie tutaj jestem "
        "mnie moj moje nasz naszej sasiedzi sasiad smieci policja policji ulica ulicy dzieci "
        "samochody nocy brudno glosno bezpiecznie niebezpiecznie wiem moze jakies zawsze "
        "nigdy czasem dlaczego gdzie kiedy dla bo tez jeszcze troche duzo malo zgadzam raczej "
        "zdania ktos moge nas mieszkam",
        "weak": "ja to w z na do tu mi ma od po za przed pod o a i noc no",
    },
    # Moroccan Arabic (darija) and other Arabic written in Latin letters ("Arabizi").
    "ar": {
        "strong": "salam salaam slm salamu alaikum aleikum alaykum aleykum aleykoem shukran shokran "
        "choukran chokran shukraan hamdulillah hamdoulillah lhamdullah alhamdulillah nchallah "
        "bzaf bezaf bzzaf mzyan mezyan mzian wakha wakhkha labas bslama besslama khoya khouya "
        "khti nta nti howa hiya hna makayn makaynch makaynach kayn kayna dyal dial diali "
        "dyali walakin walou walo zanqa lbolis dyalna bghit ghadi daba chwiya chno achno wach "
        "hada hadi hadchi kolchi koulchi afak smehli tbarkellah llahi habibi akhi yallah",
        "weak": "ana wallah wellah walah inshallah insha'allah la ma chi fin f ya tamam baraka "
        "allah lah",
    },
}


def _wordset(text: str) -> frozenset[str]:
    """The space-separated words of `text`."""
    return frozenset(text.split())


# Chat words every resident uses whatever their language: no evidence, not counted as words.
NEUTRAL_WORDS = _wordset(
    "ok okay oke oké okee okey k kk haha hahaha hihi hehe lol hmm hm huh xd wifi whatsapp "
    "telegram bot app sms"
)
# Arabizi writes 2 3 5 7 9 for Arabic sounds; 4 and 8 are English shorthand ("b4", "gr8").
_ARABIZI_DIGIT = re.compile(r"^(?=.*[a-z])[a-z]*[23579][a-z23579]*$")
# Ordinals, times and units written against a number: "1e", "3x", "5min", "10uur".
_NUMBER_SUFFIX = re.compile(
    r"^\d+(?:e|de|ste|x|st|nd|rd|th|min|uur|u|km|m|jr|jaar|k|am|pm|h|ca|mi)$"
)
_TURKISH_NAME_SUFFIX = _wordset(
    "da de ta te dan den tan ten a e ya ye ı i yı yi u ü yu yü in ın un ün nin nın nun nün "
    "la le yla yle ki dır dir"
)
_POLISH_NAME_SUFFIX = ("ie", "u", "em", "a", "cie")
_STRONG_LETTERS = {"tr": "ğış", "pl": "ąęłńśźżć"}
_WEAK_LETTERS = {"tr": "çöü", "pl": "ó", "nl": "ëï"}
# Links, handles and hashtags, then whole words with an @ (e-mail addresses): no evidence of a
# language. Both match in linear time: the second may start only at the start of a word (the old
# `\S+@\S+\.\w+` backtracked over every start position: cubic on "a@a@a@...").
_URL = re.compile(r"(?:https?://|www\.)\S+|@\w+|#\w+")
_ADDRESS = re.compile(r"(?<!\S)[^\s@]*@\S*")
# Telegram's limit for one message; anything longer is not a resident's message, and cutting it
# keeps the work bounded whatever arrives.
MAX_TEXT = 4096
_POSTCODE = re.compile(r"\b\d{4}\s?[A-Za-z]{2}\b")
_TOKEN = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
_ALPHA = 0.5 / 10000  # langdetect's smoothing for an n-gram a profile lacks


@dataclass(frozen=True, slots=True)
class Detection:
    """The detector's answer: a language or None ("unknown"), how sure, and why."""

    language: str | None
    confidence: float
    reason: str
    words: int = 0
    scores: tuple[tuple[str, float], ...] = field(default=(), compare=False)

    @property
    def stored(self) -> str:
        """The value to store with a free-text answer: the language or "unknown"."""
        return self.language or UNKNOWN


def normalise_code(code: str | None) -> str | None:
    """Base language of a Telegram/IETF code: "en-GB" -> "en", "pt_br" -> "pt", "AR" -> "ar"."""
    if not code:
        return None
    base = re.split(r"[-_]", code.strip(), maxsplit=1)[0].lower()
    return base or None


def fold(word: str) -> str:
    """Lowercase without diacritics, the way residents type without them: "Dziękuję" -> "dziekuje"."""
    word = word.replace("İ", "i").lower()
    word = word.replace("ı", "i").replace("ł", "l").replace("’", "'")
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _lower(word: str) -> str:
    # Python lowercases "İ" to "i" plus a combining dot, which no profile contains.
    return word.replace("İ", "i").lower()


def _script(ch: str) -> str | None:
    code = ord(ch)
    if not ch.isalpha():
        return None
    if 0x0600 <= code <= 0x06FF or 0x0750 <= code <= 0x077F or 0xFB50 <= code <= 0xFEFF:
        return "arabic"
    if 0x0400 <= code <= 0x052F:
        return "cyrillic"
    if 0x0590 <= code <= 0x05FF:
        return "hebrew"
    if 0x1200 <= code <= 0x139F:
        return "ethiopic"
    if code <= 0x024F or 0x1E00 <= code <= 0x1EFF:
        return "latin"
    return "other"


@lru_cache(maxsize=8)
def _profiles(languages: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, tuple[float, ...]]]:
    """Log-probability of each n-gram per language, from langdetect's profiles (read once)."""
    folder = Path(langdetect.__file__).parent / "profiles"
    known = tuple(lang for lang in languages if (folder / lang).is_file())
    tables: list[tuple[dict[str, int], list[int]]] = []
    for lang in known:
        data = json.loads((folder / lang).read_text(encoding="utf-8"))
        tables.append((data["freq"], data["n_words"]))
    grams: set[str] = set()
    for freq, _ in tables:
        grams.update(g for g in freq if 1 <= len(g) <= 3)
    logs: dict[str, tuple[float, ...]] = {}
    for gram in sorted(grams):
        row = []
        for freq, n_words in tables:
            prob = freq.get(gram, 0) / n_words[len(gram) - 1]
            row.append(math.log(prob + _ALPHA))
        logs[gram] = tuple(row)
    return known, logs


def _ngrams(text: str) -> Iterable[str]:
    """langdetect's n-grams (1-3 characters, words padded with spaces, its normalisation)."""
    ngram = NGram()
    for ch in text + " ":
        ngram.add_char(ch)
        for n in (1, 2, 3):
            gram = ngram.get(n)
            if gram and gram != " ":
                yield gram


class LanguageDetector:
    """Detect which offered language a short message is in, or say it cannot tell."""

    def __init__(
        self,
        offered: Sequence[str],
        *,
        priors: Mapping[str, float] | None = None,
        place_names: Iterable[str] = (),
        min_confidence: float = 0.8,
        min_letters: int = 10,
        ngram_weight: float = 0.35,
        ngram_cap: float = 3.0,
        word_lists: Mapping[str, Mapping[str, str]] | None = None,
        others: Sequence[str] = DEFAULT_OTHERS,
        other_margin: float = 3.0,
    ) -> None:
        self.offered = tuple(dict.fromkeys(c for c in (normalise_code(o) for o in offered) if c))
        weights = {lang: (priors or DEFAULT_PRIORS).get(lang, 1.0) for lang in self.offered}
        total = sum(weights.values()) or 1.0
        self.log_prior = {lang: math.log(weights[lang] / total) for lang in self.offered}
        self.min_confidence = min_confidence
        self.min_letters = min_letters
        self.ngram_weight = ngram_weight
        self.ngram_cap = ngram_cap
        self._places = self._place_set([*DEFAULT_PLACE_NAMES, *place_names])
        self._latin = tuple(
            lang for lang in self.offered if SCRIPT_OF.get(lang, "latin") == "latin"
        )
        self.other_margin = other_margin
        self._others = tuple(
            lang
            for lang in (normalise_code(o) for o in others)
            if lang and lang not in self.offered and SCRIPT_OF.get(lang, "latin") == "latin"
        )
        self._ngram_langs, self._logs = _profiles(tuple(sorted({*self.offered, *self._others})))
        self._others = tuple(lang for lang in self._others if lang in self._ngram_langs)
        # Residents repeat the same words; their n-gram fit is worth remembering.
        self._word_fit = lru_cache(maxsize=8192)(self._fit)
        self._words: dict[str, dict[str, float]] = {}
        for lists in (_WORDS, word_lists or {}):
            for lang, tiers in lists.items():
                if lang not in self.offered:
                    continue
                for tier, text in tiers.items():
                    for word in text.split():
                        self._words.setdefault(fold(word), {})[lang] = _TIER_WEIGHT[tier]

    @staticmethod
    def _place_set(names: Iterable[str]) -> frozenset[tuple[str, ...]]:
        out: set[tuple[str, ...]] = set()
        for name in names:
            parts = tuple(fold(p) for p in _TOKEN.findall(name))
            if parts:
                out.add(parts)
                out.add(tuple(fold(name).replace("-", " ").split()))
        return frozenset(out)

    def _tokens(self, text: str) -> tuple[list[str], dict[str, float]]:
        """Words that count as evidence, and evidence found while removing place names."""
        text = unicodedata.normalize("NFC", text)
        text = _POSTCODE.sub(" ", _URL.sub(" ", _ADDRESS.sub(" ", text)))
        raw = _TOKEN.findall(text)
        bonus: dict[str, float] = {}
        words: list[str] = []
        i = 0
        while i < len(raw):
            for size in (3, 2, 1):
                chunk = raw[i : i + size]
                if len(chunk) == size and self._is_place(chunk, bonus):
                    i += size
                    break
            else:
                token = raw[i]
                i += 1
                lowered = token.lower()
                if token.isdigit() or _NUMBER_SUFFIX.match(lowered) or lowered in NEUTRAL_WORDS:
                    continue
                words.append(token)
        return words, bonus

    def _is_place(self, chunk: list[str], bonus: dict[str, float]) -> bool:
        folded = [fold(t) for t in chunk]
        if tuple(folded) in self._places:
            return True
        *head, last = folded
        base, _, suffix = last.replace("’", "'").partition("'")
        if suffix and tuple([*head, base]) in self._places:
            # Turkish writes case endings after an apostrophe on names: "Overvecht'te".
            if _lower(chunk[-1].replace("’", "'").partition("'")[2]) in _TURKISH_NAME_SUFFIX:
                bonus["tr"] = bonus.get("tr", 0.0) + 2.0
            return True
        if len(chunk) == 1 and chunk[0][:1].isupper():
            for ending in _POLISH_NAME_SUFFIX:
                if last.endswith(ending) and (last[: -len(ending)],) in self._places:
                    bonus["pl"] = bonus.get("pl", 0.0) + 1.0  # "w Poelenburgu"
                    return True
        return False

    def detect(self, text: str) -> Detection:
        """The language of `text`, or None when the evidence is too thin or points nowhere.

        Only the first MAX_TEXT characters are read.
        """
        words, bonus = self._tokens(text[:MAX_TEXT])
        letters = [ch for word in words for ch in word if ch.isalpha()]
        if not letters:
            return Detection(None, 0.0, "no words")
        scripts: dict[str, int] = {}
        for ch in letters:
            script = _script(ch)
            if script:
                scripts[script] = scripts.get(script, 0) + 1
        script = max(sorted(scripts), key=lambda s: scripts[s])
        if script != "latin":
            return self._non_latin(script, words, letters)
        return self._latin_text(words, bonus)

    def _non_latin(self, script: str, words: list[str], letters: list[str]) -> Detection:
        candidates = [lang for lang in self.offered if SCRIPT_OF.get(lang, "latin") == script]
        if not candidates:
            return Detection(None, 0.0, f"{script} script, no offered language", len(words))
        if len(letters) < 2:
            return Detection(None, 0.0, "too short", len(words))
        if len(candidates) == 1:
            return Detection(candidates[0], 0.99, f"{script} script", len(words))
        scores = {lang: self.log_prior[lang] for lang in candidates}
        for lang, value in self._ngram_scores(
            [_lower(w) for w in words], candidates, script
        ).items():
            scores[lang] += value
        return self._decide(scores, words, len(letters), evidence=set(), reason="ngrams")

    def _fit(self, word: str) -> tuple[float, ...]:
        """Log-likelihood of one word under each profile, in `_ngram_langs` order."""
        rows = [row for row in map(self._logs.get, _ngrams(word)) if row is not None]
        if not rows:
            return (0.0,) * len(self._ngram_langs)
        return tuple(sum(column) for column in zip(*rows, strict=True))

    def _ngram_scores(
        self, words: Iterable[str], languages: Sequence[str], script: str = "latin"
    ) -> dict[str, float]:
        """Per language, how much worse its n-gram fit is than the best one (0 for the best)."""
        index = {
            lang: i
            for i, lang in enumerate(self._ngram_langs)
            if SCRIPT_OF.get(lang, "latin") == script
        }
        usable = [lang for lang in languages if lang in index]
        out = dict.fromkeys(languages, 0.0)
        if len(usable) < 2:
            return out
        for word in words:
            sums = self._word_fit(word)
            totals = {lang: sums[index[lang]] for lang in usable}
            best = max(totals.values())
            for lang in usable:
                # Scaled and capped per word: the n-grams of one word are far from
                # independent, and one odd word must not outvote the word lists.
                out[lang] += max(self.ngram_weight * (totals[lang] - best), -self.ngram_cap)
        # A language without a profile gets the weakest fit: only its own words can make it win.
        worst = min(out[lang] for lang in usable)
        for lang in languages:
            if lang not in index:
                out[lang] = worst
        return out

    def _latin_text(self, words: list[str], bonus: dict[str, float]) -> Detection:
        candidates = [*self._latin, *(lang for lang in self.offered if lang in LATIN_CHAT_FORM)]
        if not candidates:
            return Detection(None, 0.0, "latin script, no offered language", len(words))
        scores = {lang: self.log_prior[lang] for lang in candidates}
        evidence: set[str] = set()
        for lang, value in bonus.items():
            if lang in scores:
                scores[lang] += value
                evidence.add(lang)
        ngram_words: list[str] = []
        guard_words: list[str] = []
        for position, word in enumerate(words):
            key = fold(word)
            hits = self._words.get(key) or self._words.get(key.replace("'", ""), {})
            for lang, weight in hits.items():
                if lang in scores:
                    scores[lang] += weight
                    if weight >= _TIER_WEIGHT["strong"]:
                        evidence.add(lang)
            lowered = _lower(word)
            for lang, chars in _STRONG_LETTERS.items():
                if lang in scores and any(ch in chars for ch in lowered):
                    scores[lang] += 2.0
                    evidence.add(lang)
            for lang, chars in _WEAK_LETTERS.items():
                if lang in scores and any(ch in chars for ch in lowered):
                    scores[lang] += 0.7
            if "ar" in scores and _ARABIZI_DIGIT.match(key):
                scores["ar"] += 2.0  # digits for Arabic sounds: "3afak", "l7ay", "ma3reftch"
                evidence.add("ar")
                continue
            # A capitalised word inside a sentence that no list knows is most likely a name.
            if not hits and position > 0 and word[:1].isupper() and not word.isupper():
                continue
            guard_words.append(lowered)
            if not hits:  # a listed word is better evidence than its letters
                ngram_words.append(lowered)
        # Latin-script Arabic has no Latin n-gram profile: scored like a language without one.
        fits = self._ngram_scores(ngram_words, candidates)
        for lang, value in fits.items():
            scores[lang] += value
        n_letters = sum(ch.isalpha() for word in ngram_words for ch in word)
        detection = self._decide(scores, words, n_letters, evidence, reason="words+ngrams")
        if detection.language in self._latin and self._others:
            other = self._other_language(detection.language, guard_words, evidence)
            if other:
                return Detection(None, 0.0, f"other language ({other})", len(words))
        return detection

    def _other_language(self, best: str, words: list[str], evidence: set[str]) -> str | None:
        """A language buurtstem does not offer that fits `words` clearly better than `best`."""
        if (best in evidence and len(words) < 3) or best not in self._ngram_langs:
            return None  # too little to compare, or nothing to compare with
        fits = self._ngram_scores(words, [best, *self._others])
        other = max(self._others, key=lambda lang: (fits[lang], lang))
        margin = fits[other] - fits[best]
        if best in evidence:
            margin -= _TIER_WEIGHT["strong"]
        return other if margin >= self.other_margin else None

    def _decide(
        self,
        scores: dict[str, float],
        words: list[str],
        n_letters: int,
        evidence: set[str],
        reason: str,
    ) -> Detection:
        top = max(scores.values())
        exp = {lang: math.exp(score - top) for lang, score in scores.items()}
        total = sum(exp.values())
        posterior = sorted(
            ((lang, value / total) for lang, value in exp.items()), key=lambda kv: (-kv[1], kv[0])
        )
        ranked = tuple((lang, round(p, 4)) for lang, p in posterior)
        best, confidence = posterior[0]
        if confidence < self.min_confidence:
            return Detection(None, confidence, "ambiguous", len(words), ranked)
        if best not in evidence and n_letters < self.min_letters:
            return Detection(None, confidence, "too short", len(words), ranked)
        return Detection(best, confidence, reason, len(words), ranked)


def decide_language(
    *,
    chosen: str | None,
    telegram_code: str | None,
    detected: Detection | None,
    offered: Sequence[str],
    default: str = "nl",
    min_confidence: float = 0.9,
) -> tuple[str, str]:
    """The language to talk in and where it came from: chosen, telegram, detected or default."""
    available = {normalise_code(code) for code in offered}
    own = normalise_code(chosen)
    if own in available and own:
        return own, "chosen"
    telegram = normalise_code(telegram_code)
    if telegram in available and telegram:
        return telegram, "telegram"
    found = detected.language if detected is not None else None
    if found and found in available and detected and detected.confidence >= min_confidence:
        return found, "detected"
    return default, "default"


def should_offer_switch(
    *,
    current: str,
    source: str,
    detection: Detection,
    already_offered: bool,
    min_confidence: float = 0.95,
    min_words: int = 3,
) -> str | None:
    """The language to offer once when a resident clearly writes in another one, else None."""
    if already_offered or detection.language is None or detection.language == current:
        return None
    if "script" not in detection.reason and detection.language in LATIN_CHAT_FORM:
        # Someone who writes Arabic in Latin letters may not read Arabic script well.
        return None
    words = min_words + 1 if source == "chosen" else min_words
    confidence = max(min_confidence, 0.98) if source == "chosen" else min_confidence
    if detection.words < words or detection.confidence < confidence:
        return None
    return detection.language

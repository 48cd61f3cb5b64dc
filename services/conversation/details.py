"""What a citizen's words add to a draft work order: the place and phone of any turn, a
correction at the read-back ("地点改成…", "电话不对，是…"), whether a request says more than
its kind ("我要投诉" alone), the item picked from a list."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from nlu.types import Address, ParseResult

MAX_LOCATION_CHARS = 200
# Characters beyond a detail's own words from which a reply also says more about the matter.
EXTRA_WORDS = 15

# Where a correction's new value starts: after the last of these ("不是A，是B", "改成B").
_NEW_VALUE = re.compile(r"(?:改成|改为|换成|改到|应该是|应为|其实是|实际是|是在|在|是)[:：]?")
_ABOUT_PLACE = re.compile(r"地点|地址|位置|地方|门牌|小区|路名")
_ABOUT_PHONE = re.compile(r"电话|号码|手机|联系方式|座机")
# The words of a bare announcement ("我要投诉一下", "你好，我想反映个问题"): when nothing else
# is left, the message has no matter in it yet.
_ANNOUNCEMENT = re.compile(
    r"你好|您好|喂|请问|麻烦|我们|我|想要|想|要|需要|来|打算|准备|"
    r"投诉|举报|反映|反应|建议|求助|咨询|表扬|问问|问|"
    r"一下|一个|个|下|点|件|事情|事儿|事|问题|情况|的|有|啊|呀|吧|了|呢|嘛|哈|哦|喔|"
    r"12345|热线|政府|你们"
)
_PUNCT = re.compile(r"[\s，。！？!?,.、；;：:~～…“”\"'（）()]+")
_CHINESE_ORDINAL = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}


def compact(text: str) -> str:
    return _PUNCT.sub("", unicodedata.normalize("NFKC", text))


# The request types' own names, as a bare announcement says them; 反映 names no type yet.
_TYPE_WORDS = (
    ("投诉", "complain"),
    ("举报", "report"),
    ("建议", "suggest"),
    ("求助", "seek_help"),
    ("表扬", "praise"),
    ("咨询", "consult"),
    ("问", "consult"),
    ("反映", ""),
    ("反应", ""),
)


def announced_type(text: str) -> str | None:
    """For a bare announcement ("我要投诉", "投诉一下", "我想反映个问题"): the request type
    it names ("" when it names none); None for any other message."""
    if not announces_only(text):
        return None
    key = compact(text)
    found = [(key.find(word), kind) for word, kind in _TYPE_WORDS if word in key]
    return min(found)[1] if found else None


def announces_only(text: str) -> bool:
    """True when a request names only its kind ("投诉一下", "我想反映个问题"): the matter
    itself is still to come."""
    rest = _ANNOUNCEMENT.sub("", compact(text))
    return len(rest) <= 1


def address_dict(address: Any) -> dict | None:
    if address is None:
        return None
    return {k: v for k, v in address.__dict__.items() if v is not None}


# A phone number as digits, spoken digits or with separators: it says nothing about the matter.
_PHONE_RUN = re.compile(
    r"[0-9０-９零〇一幺二两三四五六七八九][0-9０-９零〇一幺二两三四五六七八九\-－ ]{6,}"
)


def said_number(text: str) -> str | None:
    """The digits of a number said in a reply (maybe not a valid phone), as said."""
    found = [m.group(0).strip() for m in _PHONE_RUN.finditer(text)]
    return max(found, key=len) if found else None


# Where a reply splits into its parts: "行 提交 顺便问问…" starts with its answer.
_CLAUSE = re.compile(r"[\s，。！？!?,.、；;：:~～…]+")


def clauses(text: str) -> list[str]:
    return [c for c in _CLAUSE.split(text.strip()) if c]


def add_matter(draft: dict, text: str, *, routed: bool = True) -> None:
    """More words for the order's text. `routed`: they describe the matter, so the unit is
    chosen on them too; a reply to a slot question (the place, the phone) is kept in the text
    the agents read but does not route: "西门后巷 对 西门后巷" says where, not what."""
    text = text.strip()
    if not text:
        return
    draft["content"] = f"{draft['content']}\n{text}" if draft.get("content") else text
    if routed:
        draft.setdefault("matter", [])
        draft["matter"].append(text)


# Below this many characters beside the announcement words ("我要投诉一个医生" leaves 医生),
# the matter is still to be told: the next reply's words describe it, whatever it answers.
THIN_MATTER = 6


def thin_matter(draft: dict) -> bool:
    """Whether what routes the draft so far says little more than its kind."""
    said = compact(" ".join(draft.get("matter") or [draft.get("content", "")]))
    return len(_ANNOUNCEMENT.sub("", said)) < THIN_MATTER


# How a caller opens before the matter ("喂 喂 听得到吗 我跟你讲啊", "我要反映一下啊"): words
# that say nothing of which unit handles it, but dilute what does (at the start only).
_OPENER = re.compile(
    r"^(?:[\s，。！？!?,.、~～…]*(?:喂+|你好|您好|哈喽|hello|hi|同志|师傅|小姑娘|小伙子|美女|"
    r"听得到吗|听得见吗|能听到吗|听到没|我跟你讲|我跟你说|跟你讲|跟你说|是这样的?|那个|就是|"
    r"我(?:要|想|来)?(?:反映|反应|投诉|举报|求助|咨询|问|建议|说|讲)(?:一下|个事情?|件事情?|个问题|个情况)?|"
    r"请问一下|请问|麻烦(?:你|您)?(?:问一下)?|问一下|我想提个建议)[啊呀吧哈呢嘛哦喔]*)+",
    re.I,
)


def without_opener(text: str) -> str:
    """The text without the caller's opening words, if anything is left."""
    rest = _OPENER.sub("", text.strip()).strip(" ，。！？!?,.、")
    return rest or text


def routing_text(draft: dict) -> str:
    """The words the unit is chosen on: what the citizen said about the matter over the
    turns, without phone numbers and without the slot replies. The place is not appended as
    said ("灵秀镇钞岱村南边的田里" reads as a town's matter); only its area's name is, which the
    classifier masks like every known place name: it decides nothing about the duty unit, but
    lets a matter that is the town's own (the territorial class) go to the right town."""
    matter = draft.get("matter")
    if matter is None:  # a draft written before the matter was kept apart
        matter = [draft.get("content", "")]
    text = _PHONE_RUN.sub(" ", " ".join(without_opener(m) for m in matter)).strip()
    area = (draft.get("address") or {}).get("area")
    if area and area not in text:
        text = f"{text} {area}"
    return text


def take_details(draft: dict, parse: ParseResult, *, replace: bool) -> list[str]:
    """Put the place and phone found in a message into the draft: only what is missing, or
    (`replace`) whatever the message gives. Returns the names of what was set."""
    taken = []
    phones = parse.entities.phones
    if phones and (replace or not draft.get("phone")):
        draft["phone"] = phones[-1]  # "不是138…，是139…": the new number comes last
        taken.append("phone")
    address = parse.entities.address
    if said_again(draft, address):
        address = None
    if address is not None and (replace or not draft.get("location")):
        draft["location"] = address.text[:MAX_LOCATION_CHARS]
        draft["address"] = address_dict(address)
        taken.append("location")
    return taken


def said_again(draft: dict, address: Address | None) -> bool:
    """Whether a place is a part of the draft's place ("村子我已经说了，港边村！"): it says
    nothing new, and taken alone it would lose the town the citizen named with it."""
    known = compact(draft.get("location") or "")
    return address is not None and bool(known) and compact(address.text) in known


class _Kept:
    """An address already in the draft, kept as it was."""

    def __init__(self, fields: dict) -> None:
        self.__dict__.update(fields)


def extra_words(parse: ParseResult) -> int:
    """How many characters a reply has beside the place and phones found in it."""
    rest = parse.text
    if parse.entities.address is not None:
        rest = rest.replace(parse.entities.address.text, "")
    rest = re.sub(r"[0-9零〇一幺二两三四五六七八九\-－ ]{7,}", "", rest)
    return len(compact(rest))


def about_place(text: str) -> bool:
    """Whether a message speaks of the place ("地址说错了…")."""
    return bool(_ABOUT_PLACE.search(text))


# Words that take a read-back back ("…，不对，地址错了"). Not a bare "不是": in a remark it
# sets one thing against another ("要镇领导给个说法，不是村干部").
_TAKES_BACK = re.compile(r"不对|错了|写错|说错|搞错|改成|改为|换成|更正|修改|应该是")


def takes_back(text: str) -> bool:
    """Whether the words after a yes go on to correct what was read back."""
    return bool(_TAKES_BACK.search(text))


# A yes that asks for the filing itself, not an "OK" before the next detail.
_GOES_AHEAD = re.compile(r"确认|提交|登记|无误|没错|无错|就这样|就按|按呢|不用留|不留")


# "先不提交", "别登记了", "不用确认": the filing put off, not asked for.
_HOLDS_BACK = re.compile(
    r"(不|别|没|暂不|先不|不用|不要|不想|不必|莫)(要|用|想|急着|先)?(着)?(确认|提交|登记|递交)"
)


def holds_back(text: str) -> bool:
    """Whether a reply puts the filing off ("先不提交了，我再想想")."""
    return bool(_HOLDS_BACK.search(text))


def goes_ahead(text: str) -> bool:
    """Whether a yes given where a detail was asked asks for the matter to be filed as is."""
    return bool(_GOES_AHEAD.search(text)) and not holds_back(text)


# "提交" at the read-back asks for the filing whatever else the reply says ("你把时间写进去，
# 写了就提交"): the rest is a remark, unless it takes the read-back back or names the place
# or phone to change.
_SUBMITS = re.compile(r"提交|递交|报上去")
_NAMES_A_SLOT = re.compile(r"地点|地址|位置|电话|号码|手机")


def submits_with_remark(text: str) -> bool:
    """Whether a reply to the read-back asks to file and adds only a remark."""
    return (
        bool(_SUBMITS.search(text))
        and not holds_back(text)
        and not takes_back(text)
        and not _NAMES_A_SLOT.search(text)
    )


# "就打我这个号码", "电话就这个": the citizen takes it that the centre sees the number they
# write from. On the web and WeChat it does not: there is no number to take.
_OWN_NUMBER = re.compile(
    r"(这个|本|此|我这)(手机|电话|号码|号)|(电话|号码|手机号?)就(是)?(这个|这|用这)|来电号码|打我这"
)


def own_number(text: str) -> bool:
    """Whether a reply where the phone was asked points at "this number" instead of one."""
    return bool(_OWN_NUMBER.search(text))


# An explicit wish for a person, wherever it stands in a reply ("不对，你理解错了，算了，
# 转人工吧"); not when the citizen says they need none ("不用转人工").
_WANTS_PERSON = re.compile(
    r"(转|找|要|接)(个)?人工|人工(客服|服务|坐席)|真人(客服)?|"
    r"(我要|我想|让我|给我)(跟|和|找)(个)?(真)?人(讲|说|谈|聊)|找(个)(真)?人(讲|说|谈|聊)"
)
_NO_PERSON = re.compile(r"(不用|不要|别|不需要|无需|毋免)(转|找|要)?(个)?人工")


def asks_for_person(text: str) -> bool:
    """Whether a reply asks to talk to an agent."""
    return bool(_WANTS_PERSON.search(text)) and not _NO_PERSON.search(text)


# "我马上打119", "已经报警了": the citizen turns to the emergency service.
_CALLS_EMERGENCY = re.compile(
    r"(打|拨|叫|报)(了)?(个)?\s*(110|119|120|火警|救护车|警察|消防)|报警|报了警|(110|119|120)(已经)?打了"
)


def calls_emergency(text: str) -> bool:
    """Whether a reply says the citizen is calling (or has called) an emergency number."""
    return bool(_CALLS_EMERGENCY.search(text))


# "没人受伤", "人已经出来了": the danger is over or never was; the reply is no alarm.
_ALL_CLEAR = re.compile(
    r"(没|没有|无)(人)?(受伤|伤到人|伤人|危险)|人(都)?没事|(人|都)(已经|刚)?(出来|救出来|救上来)了"
)


def all_clear(text: str) -> bool:
    """Whether a reply says that nobody is in danger."""
    return bool(_ALL_CLEAR.search(text))


def new_value(text: str) -> str:
    """The part of a correction after its last "改成 / 是 / 应该是…": the new value."""
    tail = text.strip()
    last = None
    for m in _NEW_VALUE.finditer(tail):
        last = m
    if last is not None and last.end() < len(tail):
        tail = tail[last.end() :]
    return tail.strip(" ，。,.!！:：")


def apply_correction(draft: dict, parse: ParseResult, place_of) -> str:
    """Change the draft as a correction at the read-back says; returns what changed
    (phone, location, content; same_location when the place was only said again).
    `place_of(text)` reads a place from a part of the text."""
    text = parse.text.strip()
    if parse.entities.phones:
        draft["phone"] = parse.entities.phones[-1]
        return "phone"
    tail = new_value(text)
    if said_again(draft, parse.entities.address):
        return "same_location"
    if parse.entities.address is not None or _ABOUT_PLACE.search(text):
        address = place_of(tail) if tail else None
        address = address or parse.entities.address
        location = address.text if address is not None else tail
        if address is None and draft.get("location"):
            # "是五排不是三排": a part of the place, kept beside what was said before
            location = f"{draft['location']}（更正：{text}）"
            address = None if not draft.get("address") else _Kept(draft["address"])
        if location:
            draft["location"] = location[:MAX_LOCATION_CHARS]
            draft["address"] = address_dict(address)
            return "location"
    if _ABOUT_PHONE.search(text):
        return "phone_unreadable"
    add_matter(draft, text)  # the words changed: the unit is chosen again on them
    return "content"


def choice_number(text: str, choices: int) -> int | None:
    """The item a reply picks from a list of `choices` ("2", "第二个", "最后一个"), else None."""
    key = compact(text)
    if "最后" in key:
        return choices
    m = re.search(r"(\d{1,2})", key)
    if m:
        return int(m.group(1))
    m = re.search(r"第?([一二两三四五])(?:个|条|项|号)?", key)
    if m:
        return _CHINESE_ORDINAL[m.group(1)]
    return None

"""Where a place name begins and ends in a citizen's message, cut at real words.

A place is a run of jieba words that ends in a place word: a word jieba tags as a place name
(ns), a name in the gazetteer, or a word ending in a place suffix (振狮路, 金鹿花园, 湖滨小学,
3号楼). The run stops at any word that is not part of a name (verbs, particles, 建议, 多,
装 …). Cutting at words, not characters, is what keeps "路灯" from ending a place at its 路
("建议在湖滨公园多装几个路灯" → 湖滨公园, "路口的路灯坏了" → none).
"""

from __future__ import annotations

from dataclasses import dataclass

from nlu.features import _jieba
from nlu.posseg_viterbi import install as install_viterbi

# Words that end a place name. Longer ones first only for readability: matching is by
# endswith on a whole word.
PLACE_SUFFIXES = (
    "社区 小区 花园 公园 广场 市场 菜市场 商场 商城 服装城 超市 学校 中学 小学 幼儿园 大学 "
    "学院 医院 卫生院 诊所 大厦 公寓 酒店 宾馆 工业区 工业园 园区 开发区 车站 汽车站 公交站 "
    "码头 新村 山庄 大道 街道 村委会 居委会 交叉口 路段 体育馆 图书馆 派出所 景区 水库 海滩 "
    "路 街 巷 弄 村 镇 乡 苑 城 湾 港 桥 厝 寺 宫 号 栋 幢 座 楼 层 室 单元 段"
).split()
# Position words: "村口", "路边", "楼下" say where near a place, they are not its name.
_NEAR = set("口边头旁上下里内外前后")
# Words ending in a suffix that name no particular place.
_GENERIC = set(
    "马路 道路 公路 大路 小路 马路上 街上 楼层 楼上 楼下 大楼 高楼 楼房 楼道 城市 城里 "
    "进城 农村 乡下 村里 镇里 镇上 村上 村民 号码 编号 座位 这栋 那栋 一栋 哪栋 这座 那座 整栋 全村 本村 "
    "我村 外省 一段 这段 那段 "
    "各路 一路 上路 走路 修路 过路 出路 门路 电路 线路 网路 水路 思路 套路 "
    # people and errands ("老乡说…", "上门安检"), and kinds of places, not a particular one
    # ("想读公办小学", "人才公寓怎么申请")
    "老乡 同乡 家乡 城乡 下乡 回乡 上门 出门 进门 "
    "公办小学 民办小学 公办学校 民办学校 公办幼儿园 民办幼儿园 公办中学 民办中学 "
    "人才公寓 公租房 廉租房 养老院 敬老院 "
    # numbers and rooms of no particular place ("手机号 138…", "信号", "厂里办公室")
    "手机号 电话号 信号 账号 型号 挂号 口号 问号 符号 记号 暗号 小号 大号 "
    "办公室 会议室 教室 卧室 浴室 科室 诊室 值班室 宿舍楼".split()
)
# Words inside a place name may be names, nouns, numbers or letters …
_NAME_TAGS = ("ns", "nr", "nrt", "nrfg", "nz", "n", "m", "eng", "j", "nt", "s", "f")
# … but never these, whatever jieba tags them.
STOP_WORDS = set(
    "建议 投诉 举报 反映 反应 咨询 请问 希望 要求 多 装 修 坏 破 漏 堵 有人 有 没有 几个 "
    "一些 很多 好多 一下 一直 现在 今天 昨天 晚上 白天 门口 旁边 附近 对面 里面 外面 这边 "
    "那边 家里 楼下 楼上 路口 路边 路上 街上 周边 周围 一带 地方 问题 情况 这里 那里 "
    "那个 这个 我们 你们 他们 我家 自己 东西 时候 还有 就是 关于 问问 想问 问一下 问下".split()
)
_DIGITS = set("0123456789零〇一二两三四五六七八九十百千第")
_SINGLE_SUFFIXES = {s for s in PLACE_SUFFIXES if len(s) == 1}


@dataclass(frozen=True)
class Word:
    text: str
    tag: str
    start: int
    end: int


def words(text: str, known: list[tuple[int, int]]) -> list[Word]:
    """jieba's words with tags, split where a gazetteer name begins or ends (a known name is
    one word of its own, tagged ns)."""
    out: list[Word] = []
    at = 0
    cuts = sorted({i for span in known for i in span})
    for token, tag in _posseg().cut(text):
        start, end = at, at + len(token)
        at = end
        edges = [start, *[c for c in cuts if start < c < end], end]
        for a, b in zip(edges, edges[1:], strict=False):
            inside = any(s <= a and b <= e for s, e in known)
            piece = text[a:b]
            if (
                _suffix_and_near(piece)
                and out
                and _in_name(out[-1])
                and not out[-1].text.endswith(piece[0])  # 大堡村|村口 is 大堡村's entrance
            ):
                # "振狮|路上", "宝岛|路边": the suffix ends the name, the rest says near it
                out.append(Word(piece[0], "n", a, a + 1))
                out.append(Word(piece[1], "f", a + 1, b))
                continue
            out.append(Word(piece, "ns" if inside else tag, a, b))
    return out


def _suffix_and_near(token: str) -> bool:
    return len(token) == 2 and token[0] in _SINGLE_SUFFIXES and token[1] in _NEAR


def place_spans(text: str, known: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(start, end) of every place named in the text; `known` are the gazetteer's hits."""
    tokens = words(text, known)
    spans: list[tuple[int, int]] = []
    run: list[Word] = []
    for i, word in enumerate(tokens):
        if _in_name(word):
            run.append(word)
            continue
        spans.extend(_close(run, tokens, i))
        run = []
    spans.extend(_close(run, tokens, len(tokens)))
    # one character is no place: the tagger reads the Minnan pronoun 伊 ("he") as a place name
    return [(a, b) for a, b in spans if b - a >= 2]


def _close(run: list[Word], tokens: list[Word], after: int) -> list[tuple[int, int]]:
    """The place in a run of name words: from its first naming word to its last place word."""
    if not run:
        return []
    # the run ends at its last place word; "村口" ends the place before its 村
    following = tokens[after] if after < len(tokens) else None
    end = None
    for j in range(len(run) - 1, -1, -1):
        nxt = run[j + 1] if j + 1 < len(run) else following
        if _is_place_word(run[j], nxt, first=j == 0):
            end = j
            break
    if end is None:
        return []
    run = run[: end + 1]
    # it begins at the first word that names something: a place, a proper name, a number
    # ("3号楼"), or a common noun right before a bare suffix ("金鹿花园")
    start = 0
    while start < end and not _begins_name(run, start):
        start += 1
    if not any(_names(w) for w in run[start : end + 1]):
        return []  # a bare "小区", "五楼" or "3号" names no place
    stop = run[end].end
    last = run[end].text
    nxt = run[end + 1] if end + 1 < len(run) else following
    if nxt is not None and nxt.text[:1] in _NEAR and last[:-1].endswith(tuple(PLACE_SUFFIXES)):
        stop -= 1  # jieba's "村村|口": the second 村 belongs to 村口
    name = "".join(w.text for w in run[start : end + 1])
    if name in _GENERIC:
        return []  # a kind of place cut into words ("公办|小学"), not a particular one
    return [(run[start].start, stop)]


def _in_name(word: Word) -> bool:
    if word.text in STOP_WORDS or word.text in _NEAR:
        return False
    if word.tag == "m":
        return all(ch in _DIGITS for ch in word.text)
    return word.tag.startswith(_NAME_TAGS) or word.tag == "x" and word.text.isalnum()


def _is_place_word(word: Word, following: Word | None, *, first: bool) -> bool:
    if word.text in _GENERIC:
        return False
    if word.tag == "ns":
        return True
    if not word.text.endswith(tuple(PLACE_SUFFIXES)):
        return False
    return not (first and word.text in PLACE_SUFFIXES)


def _names(word: Word) -> bool:
    """A word that names a place on its own or as part of a name (not a number or a bare
    suffix)."""
    if word.tag.startswith(("ns", "nr", "nz", "nt", "eng")):
        return True
    return word.tag != "m" and word.text not in PLACE_SUFFIXES and word.text not in _GENERIC


def _begins_name(run: list[Word], i: int) -> bool:
    word = run[i]
    if word.tag.startswith(("ns", "nr", "nz", "nt", "eng", "m")) or word.tag == "x":
        return True
    if word.text.endswith(tuple(PLACE_SUFFIXES)) and word.text not in _GENERIC:
        return True
    return i + 1 < len(run) and run[i + 1].text in PLACE_SUFFIXES


def _posseg():  # noqa: ANN202 - a module
    _jieba()  # the project's dictionary of places first
    import jieba.posseg

    install_viterbi()  # jieba's HMM, same paths, on arrays (nlu/posseg_viterbi.py)
    return jieba.posseg

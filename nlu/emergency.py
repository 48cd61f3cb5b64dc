"""Life-threatening emergencies are not 12345 matters: tell the caller whom to call at once.

An emergency is danger to someone's life or limb happening now: a fire, a gas leak, someone
in the water, trapped, attacked, collapsed, poisoned, electrocuted, hurt in a crash, about to
jump. The words alone do not make one: "消防通道被堵", "去年着过火的楼", "燃气费", "电梯年检",
"上周车祸的赔偿", "救护车来得慢" and "急救培训" use them for a hazard, a past event, a fee,
a consultation or a complaint.

One classifier decides (details and figures: docs/nlu.md, bench/emergency.py):

* cue lexicons (below) say which kind of danger a message names, hence whom to call, and
  which signs say it is not happening now (past, hazard, consultation, complaint, negation,
  figure of speech) or that it is (now, still, help, hurry). They are features, no longer a
  gate: a danger said in words no lexicon has is still caught;
* a logistic regression over character n-grams, jieba words, those signs and, when the
  engine has the e5 model, the sentence vector, trained on every YAML file in
  nlu/data/emergency/ (the team's lines in many voices and an outside writer's), weighs
  them; a second one picks the number to call first.

The intent classifier's emergency probability is not used: it was trained on a few dozen
examples without look-alikes, and it raised false alarms on them.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import yaml
from scipy import sparse, special
from sklearn.linear_model import LogisticRegression

from nlu.features import TextFeatures
from nlu.one_text import Row, decision
from nlu.types import Emergency


class Embedder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


TRAINING_DIR = Path(__file__).resolve().parent / "data" / "emergency"
TRAINING_FILE = TRAINING_DIR / "train.yml"
THRESHOLD = 0.6
# the training examples' sentence vectors, computed once per model and training set
VECTOR_CACHE_DIR = Path.home() / ".cache" / "hotline-emergency"

EMERGENCY_LABELS = {"110": "110（公安报警）", "119": "119（消防救援）", "120": "120（医疗急救）"}


def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(parts))


# Who is in danger, said in many ways: a person word before a verb of falling or collapse.
_WHO = r"(人|他|她|伊|我|老人|小孩|孩子|囝仔|阿公|阿嬷|阿伯|爸|妈|爷爷|奶奶|老公|老婆|工人|工友|同事|司机)"

# kind, pattern, numbers to call. Matched on the text without punctuation or spaces, so
# speech and typed text read alike.
DANGERS: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = [
    (
        "gas",
        _rx(
            r"(煤气|燃气|天然气|液化气|瓦斯|气罐|气瓶|燃气管|气管子).{0,10}"
            r"(泄漏|泄露|漏气|漏了|在漏|漏出|喷气|嘶嘶|味道?.{0,4}(浓|重|大|冲|呛)|爆|臭味)",
            r"(煤气|燃气|天然气|液化气)味|漏气|泄漏|泄露",
            r"(一股|好大|很大|很浓|好浓|很重|好重|很冲)(的)?(煤气|燃气|天然气|液化气|气)味",
        ),
        ("119",),
    ),
    (
        "fire",
        _rx(
            r"着火|起火|失火|火灾|火警|烧起来|烧着了|着了大火|烧了起来|大火|火势|火苗|火光|"
            r"冒火|窜火|火烧|自燃|火舌|火海|爆炸|炸了|炸开|烧焦味|焦味|烧到|烧进|在烧|烧得|"
            r"烧着|烧掉了|烧光|烧去|火着|着起来|放火|纵火|点火|泼(了)?汽油|火花|烟雾|烧红|"
            r"(烟|火灾)(感|报警器).{0,3}(响|叫)",
            r"火.{0,3}(大|旺|猛|起|窜|冒|灭不|扑不|蔓延|烧)",
            r"(冒|起|窜|满|全|都|好多|很多|一屋|一楼)(是)?(的)?(黑|浓|白)?烟|浓烟|黑烟",
            r"烟.{0,3}(冒|进来|出来|呛|浓|很大|好大|太大|弥漫)|烟.{0,6}(冒进|灌进|钻进)",
            r"(房子|屋|厝|楼|车|店|厂|仓库|电瓶车|电动车|板房).{0,4}(着了|烧了|在烧)",
        ),
        ("119",),
    ),
    (
        "water",
        _rx(
            r"落水|溺水|淹死|淹着|沉下去|快沉|被水冲|被浪卷|卷走|冲走|水里扑腾|在水里|漂在|"
            r"浮在水|被淹|淹到|游不(回|动|上)|救生圈|冲进(河|海|水)|跳(河|江|海|湖|水)|冲下去|漂走|"
            r"被水卷",
            r"掉(进|到|下|落)?.{0,6}(河|海|水|湖|池|塘|井|水库|江|溪|港|粪池|沟)",
            r"(河|海|湖|水|江|溪|塘|池)里(有人|有个|有小孩)|人在(海|河|水|湖|江|溪)里|滑下去|滑进",
            r"水(已经)?(到|淹到|漫到|没过|快到).{0,3}(胸|脖|腰|窗|车顶|屋顶)",
        ),
        ("110", "119"),
    ),
    (
        "trapped",
        _rx(
            r"被困|困在|困住|困人|关在电梯|(在|困|关|卡)电梯里|出不去|出不来|下不去|下不来|"
            r"上不来|爬不上来|被压|压在|压住|被埋|埋了|塌了|塌下来|倒塌|坍塌|塌方|拔不出来|"
            r"反锁在车|门(打|推|拉)不开|开不了门|困了.{0,3}(人|个|分钟|小时|半天|好久)|出不了|"
            r"下不了楼|逃不出|跑不出|跑不掉|洪水|山洪|泥石流|滑坡|被锁",
            r"电梯.{0,8}(卡住|卡在|不动|停住|停了|掉|坠|冲顶|蹲底|关人|打不开|出不)",
            r"卡在.{0,6}(里|中间)|卡住了|关在.{0,6}(里面|里头|内底|屋里)|锁在.{0,6}(里|车)|"
            r"(卡|卷|绞|夹)进去|电梯里.{0,6}(就我|出不|没人|灯)|(被|把).{0,4}关在",
        ),
        ("119",),
    ),
    (
        "suicide",
        _rx(
            r"跳楼|跳下去|要跳|往下跳|轻生|自杀|割腕|寻短见|上吊|不想活|遗书|活不下去|想死|"
            r"结束(自己的)?生命",
            r"(楼顶|天台|窗台|窗户外|桥上|栏杆外|塔吊|阳台外).{0,8}(跳|站着|坐着|爬)|"
            r"(爬到|爬出|翻出|站在|坐在).{0,4}(窗户外|窗外|阳台外|空调架|栏杆外|楼顶边|天台边)",
        ),
        ("110", "120"),
    ),
    (
        "crime",
        _rx(
            r"抢劫|抢包|被抢|抢(走|了|劫|包|钱|手机|小孩|孩子)|持刀|持械|砍刀|菜刀|对砍|乱砍|"
            r"被砍|砍(人|伤|死|了|我)|捅人|被捅|捅了|杀人|杀我|要杀|弄死|打死|绑架|被绑|劫持|"
            r"挟持|打人|(在|要|又|还|来)打我|打我(了|一|的头|耳光)|在打|打起来|打架|斗殴|群殴|打砸|相拍|相打|拍人|入室|撬(开|门|锁)|"
            r"闯进|翻墙进|翻进|砸门|砸(店|东西|车|玻璃)|闹事|家暴|跟踪|尾随|拖上车|强行|"
            r"拐(走|卖)|强奸|猥亵|性侵|不让我走|传销窝|撞人|围着打|追着打|追(我|人|砍)|堵我|"
            r"掐(我|住|脖)|勒住|小偷|进贼|在偷|偷东西|要报警|帮我报警|我要报警|歹徒|坏人|"
            r"炸弹|走失|走丢|孩子丢了|找不到(孩子|小孩|老人)|踹门|踢门|冲进来|"
            r"打(老婆|小孩|孩子|老人|她|他|我妈|我爸)|(拽|拖)(走|着我|我上)|(拉|抱)(着我|我上)|"
            r"被.{0,2}(拉|抱)走|把(人|孩子|小孩|我|她|他).{0,3}(拉|抱)走|不让我下车|"
            r"砸(我|门|店)|汽油|(拽|拖|拉)着.{0,6}(往|上)车|开着.{0,4}撞",
            r"被.{0,3}打(了|伤|晕|得)",
            r"(拿|持|握|举|掏|亮)(着|了|出)?.{0,3}(刀|枪|棍|棒|砖|斧|锤|钢管|凶器|铁棍)",
        ),
        ("110",),
    ),
    (
        "poison",
        _rx(
            r"中毒|农药|敌敌畏|百草枯|安眠药|老鼠药|一氧化碳|烧炭|误(吃|食|服|喝)|"
            r"吃了.{0,6}药|喝了.{0,6}(药|消毒水|洗洁精|汽油|酒精)|吞了.{0,6}(药|电池|纽扣|东西)"
        ),
        ("120",),
    ),
    (
        "electric",
        _rx(r"触电|被电|电到了|电倒|电打|被高压电|漏电.{0,4}(倒|电到|人)"),
        ("120",),
    ),
    (
        "traffic",
        _rx(
            r"车祸|撞车|被车撞|被撞|撞倒|撞飞|撞到人|撞了人|撞伤|撞死|翻车|车翻|翻到沟|追尾|"
            r"连环撞|碾|轧|压在轮|车.{0,4}(冲|撞|翻)"
        ),
        ("120", "110"),
    ),
    (
        "medical",
        _rx(
            r"晕倒|昏倒|晕过去|昏过去|昏迷|昏去|不省人事|叫不醒|喊不应|叫不应|没反应|无反应|"
            r"无应|没动静|没(有)?呼吸|呼吸(困难|急促|很弱|微弱)|没气|无气|不喘气|心跳|没脉搏|"
            r"心脏病|心梗|脑梗|中风|抽搐|抽筋|翻白眼|口吐白沫|吐白沫|吐血|休克|没知觉|意识不清|"
            r"流(了)?(好多|很多|一地)?血|出血|血(喷|流|止不住)|头破|止不住|"
            r"(都|全|满|一身|满头|满脸)是血|(好多|很多|一地|一滩|大量)(的)?血|"
            r"喘不(上|过)(气|来)|呛奶|噎住|卡住喉咙|脸(都)?(发)?紫|嘴唇发紫|发紫|脸色发白|"
            r"不动了|一动不动|动不了|不会动|起不来|站不起来|爬不起来|醒不过来|不醒|"
            r"跋倒|跋落|倒落去|胸口(疼|痛)|心口痛|冒冷汗|说不出话|半边身子|嘴歪|"
            r"羊水破|要生了|腿断|骨折|受伤|伤者|快不行了|人不行了|快死了|没命|"
            r"摔(倒|伤|断|下来|下去)|烫伤|烧伤|咬伤|过敏.{0,6}(喘|肿)|发病|犯病|病发|癫痫|哮喘|"
            r"吐个不停|一直吐|吐得|(疼|痛)得(受不了|打滚|厉害|不行|晕|要命)|喘得|"
            r"被(狗|蛇|蜂|马蜂)咬|破水|早产|流产|割(伤|到)|中暑",
            rf"({_WHO}|几个).{{0,4}}(倒(了|下|在)|掉下来|掉下去|掉进去|摔了|晕|昏)|头都破",
            r"倒在.{0,6}(地|路|床|门口|厕所|浴室|里)|(全|都|一个个)倒(下|了)",
        ),
        ("120",),
    ),
    (
        "help",
        _rx(
            r"救命|救人|救救|快来人|来人啊|出人命|快叫救护车|叫个救护车|快报警|打120|打119|"
            r"打110|紧来"
        ),
        ("110", "119", "120"),
    ),
]

# Signs that the danger is not happening now, and signs that it is.
SIGNS: dict[str, re.Pattern[str]] = {
    "past": _rx(
        r"去年|前年|上个月|上月|上周|上礼拜|上星期|上次|上回|那次|以前|曾经|几年前|"
        r"前几天|前些天|前阵子|那年|当年|过火|烧过|出过|发生过|(已经|早就)(灭了|扑灭|没事|出院|"
        r"脱险|修好|处理)|后来|至今|还没(修|拆|处理|给|解决|赔)|的时候.{0,6}(没|不)|"
        r"(掉|烧|撞|塌|淹|着火|出事|打|摔倒|咬|困|偷|漏|炸)过|经常|老是|总是|每天|天天|每次|"
        r"时不时|之前.{0,6}(的|那)|过后"
    ),
    "hazard": _rx(
        r"隐患|风险|消防通道|消防车道|安全出口|通道.{0,4}堵|堵死|占用|灭火器|消防栓|过期|"
        r"容易|迟早|万一|担心|怕(会|以后|哪天|有人|出事)|会不会|可能会|有可能|要是|如果|"
        r"防止|预防|存在|私拉|飞线|违规|没装|没有(护栏|栏杆|救生|监控)|老化|裂缝|警示|"
        r"快(要)?(塌|倒|断)|要塌|会塌|出事|安全吗|小偷(很)?多|治安|门禁|道闸|车位|车库门|"
        r"怕(起火|着火|掉|摔|撞|被)|围栏|差点|报警器|打不着"
    ),
    "nuisance": _rx(
        r"污染|排放|烟囱|排烟|油烟|臭|熏|呛人|噪音|吵|扰民|违停|乱停|挡住|挡着|堵住.{0,4}车|"
        r"车被.{0,4}(堵|挡|围)|停车|占道|烧烤|烧垃圾|烧秸秆|烧纸|焚烧|放鞭炮|烟花|抽烟|吸烟"
    ),
    "consult": _rx(
        r"怎么办理|怎么申请|怎么处理|如何|请问|咨询|想问|想了解|需要什么|多少钱|"
        r"在哪(里)?(办|交|报|打|领|买|学|可以|能)|哪个部门|找谁|怎么交|电话是多少|号码是多少|"
        r"培训|演练|演习|知识|讲座|宣传|课程|报名|预约|保险|赔偿|理赔|补偿|补贴|费用|"
        r"燃气费|电费|水费|缴费|交费|欠费|账单|收费|年检|维保|保养|安检|检测|检查|改造|加装|"
        r"开户|开通|认定书|报销|疫苗|政策|规定|合规|有没有(什么|补贴|规定|政策|通知|培训)|"
        r"要不要|热线|手续|什么时候|能报|报吗|申请|强制|怎么关|开锁|医药费|维修费|负责|判"
    ),
    "complaint": _rx(
        r"投诉|太慢|来得慢|来得太慢|态度|不作为|没人管|不处理|不满意|乱收费|太贵|拖着|"
        r"没给说法|没消息|举报|表扬|感谢|卖假|假冒|假货|质量|不合理|要求.{0,6}(处理|整改|赔)|"
        r"希望|建议|整改|打不通|没人接|不接电话|占线|等了.{0,4}(分钟|小时|半天)|不管|不给|不赔"
    ),
    "negation": _rx(
        r"没(有)?(着火|起火|人受伤|受伤|伤到|人被困|人员伤亡|危险)|无人(受伤|被困)|没事|"
        r"不是(火灾|真的|着火)|都没受伤|没人伤|不严重"
    ),
    "figurative": _rx(
        r"火爆|上火|火冒三丈|火气|气炸|气死|急死|急疯|逼疯|热得要(死|命)|要命|"
        r"砍价|杀价|梦见|游戏|电视(上|里|剧|新闻)|新闻|电影|小说|视频里|困住了?.{0,4}(问题|手续)|"
        r"这个(问题|手续|事)|发烧|晕车|头晕|困了想睡|气晕|气得|气到|要吐血"
    ),
    "now": _rx(
        r"正在|现在|还在|刚刚|刚才|马上|赶紧|赶快|快点|快来|快派|快叫|快救|紧来|紧咧|卡紧|"
        r"救命|求求|快不行|里面还有|还有人|人还在|出不去|喂喂|怎么办|救救|帮帮|紧急|快快"
    ),
}


@dataclass(frozen=True)
class Signs:
    dangers: list[tuple[str, tuple[str, ...]]]
    signs: frozenset[str]


def spoken_form(text: str) -> str:
    """The text without punctuation or spaces: what speech recognition gives."""
    return "".join(
        ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P")
    )


def read_signs(text: str) -> Signs:
    flat = spoken_form(text)
    dangers = [(kind, numbers) for kind, pattern, numbers in DANGERS if pattern.search(flat)]
    return Signs(dangers, frozenset(name for name, p in SIGNS.items() if p.search(flat)))


def cues(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """The kinds of danger a message names, with whom to call for each."""
    return read_signs(text).dangers


_KINDS = [kind for kind, _, _ in DANGERS]
CALM = frozenset({"past", "hazard", "nuisance", "consult", "complaint", "negation", "figurative"})
_SIGN_NAMES = list(SIGNS)


def _sign_vector(signs: Signs) -> list[float]:
    kinds = {k for k, _ in signs.dangers}
    row = [float(k in kinds) for k in _KINDS]
    row += [float(s in signs.signs) for s in _SIGN_NAMES]
    calm = signs.signs & CALM
    row.append(float(bool(kinds)))
    row.append(float(len(kinds) >= 2))
    row.append(float(bool(calm)))
    row.append(float(bool(kinds) and not calm))
    row.append(float("now" in signs.signs and bool(calm)))
    return row


class EmergencyClassifier:
    """Logistic regression on character n-grams and jieba words of the spoken form, the
    signs above and, when an embedder is given, the e5 sentence vector; a second one, on the
    same features of the emergencies, picks the number to call first.

    The weights were chosen by 5-fold cross-validation on the training examples and on the
    held-out sets (bench/emergency.py): the hand-written signs, weighted high, over-ruled
    the words in voices they were not written for (a "灭火器" in "喷了灭火器没灭掉"), so they
    are now one feature block among others and the sentence vector carries the meaning."""

    SIGN_WEIGHT = 0.1
    EMBEDDING_WEIGHT = 3.0
    C = 10.0

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder = embedder
        # the same character and word n-grams as the message classifiers' (nlu/features.py),
        # the sentence vector (given, or encoded here) scaled by EMBEDDING_WEIGHT
        self.text = TextFeatures(embedding_weight=self.EMBEDDING_WEIGHT, char_analyzer="char")
        self.model = LogisticRegression(C=self.C, class_weight="balanced", max_iter=3000)
        self.number_model: LogisticRegression | None = None

    def _features(
        self, texts: list[str], fit: bool = False, vectors: np.ndarray | None = None
    ) -> sparse.csr_matrix:
        flat = [spoken_form(t) for t in texts]
        if self.embedder is not None and vectors is None:
            vectors = self.embedder.encode([engine_view(t) for t in texts])
        vectors = None if self.embedder is None or vectors is None else np.asarray(vectors)
        text = self.text.fit(flat, vectors) if fit else self.text.transform(flat, vectors)
        signs = np.array([_sign_vector(read_signs(t)) for t in texts]) * self.SIGN_WEIGHT
        return sparse.hstack([text, sparse.csr_matrix(signs)]).tocsr()

    def fit(
        self,
        texts: list[str],
        labels: list[int],
        numbers: list[str | None] | None = None,
        vectors: np.ndarray | None = None,
    ) -> EmergencyClassifier:
        """Each example counts twice: as written and as speech gives it (the sentence vector
        of the written form serves both: punctuation barely moves it)."""
        both = texts + [spoken_form(t) for t in texts]
        if self.embedder is not None and vectors is None:
            vectors = self.embedder.encode([engine_view(t) for t in texts])
        twice = None if vectors is None else np.vstack([vectors, vectors])
        x = self._features(both, fit=True, vectors=twice)
        self.model.fit(x, labels + labels)
        numbers = numbers or [None] * len(texts)
        rows = [i for i, n in enumerate(numbers + numbers) if n is not None]
        if len({(numbers + numbers)[i] for i in rows}) >= 2:
            self.number_model = LogisticRegression(C=self.C, max_iter=3000).fit(
                x[rows], [(numbers + numbers)[i] for i in rows]
            )
        return self

    def judge(
        self, text: str, vector: np.ndarray | None = None, signs: Signs | None = None
    ) -> tuple[float, str | None]:
        """The probability that the message is an emergency, and the number to call first
        (None without numbered training examples). `signs`: read_signs(text), when the
        caller has them already."""
        row = self._row(text, vector, signs)
        # LogisticRegression.predict_proba / predict on that row (nlu/one_text.py); a binary
        # model's probability is the sigmoid of its one score
        assert len(self.model.classes_) == 2, "the emergency model is binary"
        p = float(special.expit(decision(self.model.coef_, self.model.intercept_, row))[0])
        first = None
        if self.number_model is not None:
            scores = decision(self.number_model.coef_, self.number_model.intercept_, row)
            first = str(self.number_model.classes_[int(np.argmax(scores))])
        return p, first

    def _row(self, text: str, vector: np.ndarray | None, signs: Signs | None) -> Row:
        """_features([text], vectors=[vector]) as one row, without scikit-learn's checks."""
        if self.embedder is not None and vector is None:
            vector = self.embedder.encode([engine_view(text)])[0]
        signs = read_signs(text) if signs is None else signs
        return Row.stack(
            [
                self.text.transform_one(
                    spoken_form(text), vector if self.embedder is not None else None
                ),
                Row.dense(np.array(_sign_vector(signs)) * self.SIGN_WEIGHT),
            ]
        )

    def probability(self, text: str) -> float:
        return self.judge(text)[0]


def _read_training_file(path: Path) -> list[tuple[str, int, str | None]]:
    """(text, label, number) of one YAML file: `emergency` is a list, or a mapping from the
    number to call first to a list; `not_emergency` is a list."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    rows: list[tuple[str, int, str | None]] = []
    found = doc.get("emergency") or []
    if isinstance(found, dict):
        for number, texts in found.items():
            rows += [(str(t), 1, str(number)) for t in texts]
    else:
        rows += [(str(t), 1, None) for t in found]
    rows += [(str(t), 0, None) for t in doc.get("not_emergency") or []]
    return rows


def training_rows(directory: Path = TRAINING_DIR) -> list[tuple[str, int, str | None]]:
    """Every training example in the folder's YAML files (the team's and the outside
    writers'), in file order."""
    rows: list[tuple[str, int, str | None]] = []
    for path in sorted(directory.glob("*.yml")):
        rows += _read_training_file(path)
    return rows


def training_examples(directory: Path = TRAINING_DIR) -> tuple[list[str], list[int]]:
    rows = training_rows(directory)
    return [t for t, _, _ in rows], [y for _, y, _ in rows]


_classifiers: dict[int, EmergencyClassifier] = {}
_lock = threading.Lock()


def classifier(embedder: Embedder | None = None) -> EmergencyClassifier:
    """The classifier for this embedder (or without one), trained on first use. With an
    embedder the training examples' vectors are read from a cache file when they were
    computed before for the same texts and model (encoding them all takes a while)."""
    key = 0 if embedder is None else id(embedder)
    with _lock:
        if key not in _classifiers:
            rows = training_rows()
            texts = [t for t, _, _ in rows]
            views = [engine_view(t) for t in texts]
            vectors = None if embedder is None else _training_vectors(embedder, views)
            _classifiers[key] = EmergencyClassifier(embedder).fit(
                texts, [y for _, y, _ in rows], [n for _, _, n in rows], vectors
            )
    return _classifiers[key]


def warm_up(embedder: Embedder | None = None) -> threading.Thread:
    """Train the classifier for this embedder in the background (tens of seconds the first
    time, when the training examples' sentence vectors are not cached yet), so the first
    message does not wait for it; a message that comes sooner waits on the lock."""
    thread = threading.Thread(
        target=classifier, args=(embedder,), name="emergency-warm-up", daemon=True
    )
    thread.start()
    return thread


def _training_vectors(embedder: Embedder, texts: list[str]) -> np.ndarray:
    name = str(getattr(embedder, "name", type(embedder).__name__))
    digest = hashlib.sha256("\n".join([name, *texts]).encode("utf-8")).hexdigest()[:20]
    path = VECTOR_CACHE_DIR / f"{digest}.npy"
    if path.exists():
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return cached
    vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
    try:
        VECTOR_CACHE_DIR.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    except OSError:  # a read-only home: encode again next start
        pass
    return vectors


def assess(
    text: str, embedder: Embedder | None = None, vector: np.ndarray | None = None
) -> tuple[Signs, float, str | None]:
    signs = read_signs(text)
    model = classifier(embedder)
    p, first = model.judge(text, vector if model.embedder is not None else None, signs)
    return signs, p, first


# A message that is a place and at most this many other characters (a reply to "where?")
PLACE_REPLY_REST = 4
# How much of a message the place gate reads (the engines classify as much).
PLACE_READ_CHARS = 512


@functools.cache
def _places():
    from nlu.gazetteer import Gazetteer

    return Gazetteer.load()


def engine_view(text: str) -> str:
    """The text as the built-in engine encodes it for the sentence vector it shares with this
    detector: normalised, its known places masked, as much as it classifies. The classifier
    learns from vectors of this view, so that it is given at parse time what it learnt from
    (it learnt from the raw text before, and the engine's vector of the masked text moved its
    probabilities by up to 0.3 both ways)."""
    from nlu.normalise import normalise

    return _places().mask(normalise(text.strip())[:PLACE_READ_CHARS])


def only_a_place(text: str, place: tuple[str, str] | None = None) -> bool:
    """A reply that names a place and little else ("在凤里街道新华路中段", "宝盖镇"), with no
    sign of danger: the classifier, trained on sentences, reads too much into it. `place`:
    (the text as the engine reads places in it, the same with its known places masked); by
    default the text normalised as the built-in engine does, masked with the gazetteer, so
    every engine (the built-in one, Rasa's) has the same gate."""
    if place is None:
        from nlu.normalise import normalise

        plain = normalise(text.strip())[:PLACE_READ_CHARS]
        place = (plain, _places().mask(plain))
    plain, masked = place
    named_a_place = len(masked) < len(plain)
    rest = spoken_form(masked)
    return named_a_place and len(rest) <= PLACE_REPLY_REST and not read_signs(plain).dangers


def detect(
    text: str,
    emergency_probability: float = 0.0,
    is_top_intent: bool = False,
    embedder: Embedder | None = None,
    vector: np.ndarray | None = None,
    place: tuple[str, str] | None = None,
) -> Emergency | None:
    """An emergency when the classifier judges a danger to life happening now. The numbers:
    the one the number model picks first, then those of the kinds of danger the message
    names. (The intent classifier's opinion, the second and third arguments, is not used;
    they stay so both engines call this the same way.) `embedder`: the engine's e5 model,
    when it has one; without it the classifier does without the sentence vector. `vector`:
    the engine's own e5 vector of the message (its place names masked), so the message is
    encoded once per parse. `place`: the text as the engine reads places in it and the same
    with its known places masked, when the engine has them (else worked out here), for the
    place-reply gate below."""
    if not text or not text.strip():
        return None
    if only_a_place(text, place):
        return None
    signs, p, first = assess(text, embedder, vector)
    if p < THRESHOLD:
        return None
    specific = [(k, n) for k, n in signs.dangers if k != "help"]
    numbers: list[str] = [first] if first else []
    for _, nums in specific:
        numbers.extend(n for n in nums if n not in numbers)
    if not numbers:
        return Emergency(kind="unknown", numbers=("110", "119", "120"))
    kind = specific[0][0] if specific else "unknown"
    return Emergency(kind=kind, numbers=tuple(numbers))

"""Units a citizen names by the names people use ("工信局", "人社局", "总工会", "妇联"):
"帮我转给总工会" asks for the matter to go to that unit, not for an agent, and says which unit
should answer it.

The names come from the unit directory (the full name, and the name without its "市" or
"石狮市" prefix) and from the customary short forms below, which are how Chinese speakers
abbreviate these bodies everywhere (not phrasings of any dialogue).
"""

from __future__ import annotations

import re

from services.conversation.details import compact
from services.core.unit_directory import UnitDirectory

# The usual short names of the directory's units, by unit code.
SHORT_NAMES: dict[str, tuple[str, ...]] = {
    "police": ("公安局", "派出所"),
    "traffic-police": ("交警大队", "交警队", "交警"),
    "fire": ("消防大队", "消防队"),
    "urban-management": ("城管局", "城管"),
    "sanitation": ("环卫处", "环卫所", "环卫"),
    "municipal-works": ("市政中心", "市政公用"),
    "landscaping": ("园林中心", "园林局", "园林"),
    "housing": ("住建局", "建设局"),
    "natural-resources": ("自然资源局", "资源局", "国土局"),
    "ecology": ("生态环境局", "环保局", "环境局"),
    "transport": ("交通局", "交通运输局"),
    "bus": ("公交公司",),
    "water-resources": ("水利局",),
    "agriculture": ("农业农村局", "农业局", "农业农村"),
    "ocean-fishery": ("海洋渔业局", "海渔局", "渔业局"),
    "commerce": ("商务局",),
    "market-regulation": ("市场监管局", "市场监督管理局", "市监局", "市场监管", "工商局"),
    "health": ("卫健委", "卫健局", "卫生局"),
    "medical-insurance": ("医保局", "医疗保障局"),
    "hrss": ("人社局", "人力资源和社会保障局", "社保局", "劳动局", "劳动监察"),
    "civil-affairs": ("民政局", "民政"),
    "education": ("教育局",),
    "culture-tourism": ("文旅局", "文体旅局", "文化局", "旅游局", "体育局"),
    "emergency": ("应急局", "应急管理局", "安监局"),
    "justice": ("司法局",),
    "development-reform": ("发改局", "发改委"),
    "industry-it": ("工信局", "工业和信息化局", "经信局"),
    "finance": ("财政局",),
    "tax": ("税务局",),
    "housing-fund": ("公积金中心", "公积金管理部"),
    "admin-service": ("行政服务中心", "市民服务中心", "办事大厅"),
    "veterans": ("退役军人事务局", "退役军人局", "退役军人服务站"),
    "ethnic-religious": ("民宗局",),
    "civil-defense": ("人防办",),
    "meteorology": ("气象局",),
    "statistics": ("统计局",),
    "petition": ("信访局",),
    "tobacco": ("烟草局", "烟草专卖局"),
    "post-admin": ("邮政管理局", "邮管局"),
    "disabled-federation": ("残联",),
    "women-federation": ("妇联",),
    "trade-union": ("总工会", "工会"),
    "youth-league": ("团市委", "共青团"),
    "red-cross": ("红十字会",),
    "power": ("供电公司", "电力公司", "供电局"),
    "water-supply": ("自来水公司", "水务公司"),
    "gas": ("燃气公司", "煤气公司"),
    "econ-zone": ("开发区管委会", "管委会"),
    "hubin": ("湖滨街道办", "湖滨街道办事处"),
    "fengli": ("凤里街道办", "凤里街道办事处"),
    "lingxiu": ("灵秀镇政府",),
    "baogai": ("宝盖镇政府",),
    "hanjiang": ("蚶江镇政府",),
    "xiangzhi": ("祥芝镇政府",),
    "hongshan": ("鸿山镇政府",),
    "jinshang": ("锦尚镇政府",),
    "yongning": ("永宁镇政府",),
}
# Who the citizen wants when they ask for a person at the hotline itself.
_A_PERSON_HERE = re.compile(r"人工|客服|坐席|座席|接线员|真人|话务员|值班")


class NamedUnits:
    """Finds the unit a text names, longest name first ("市场监督管理局" before "工会")."""

    def __init__(self, units: UnitDirectory) -> None:
        names: dict[str, str] = {}
        for unit in units.units:
            for name in (unit.name, *_without_city(unit.name), *SHORT_NAMES.get(unit.code, ())):
                if len(name) >= 2:
                    names.setdefault(name, unit.code)
        ordered = sorted(names, key=len, reverse=True)
        self._codes = names
        self._pattern = re.compile("|".join(re.escape(n) for n in ordered)) if ordered else None

    def named(self, text: str) -> str | None:
        """The unit the text names, if exactly one is named."""
        if self._pattern is None:
            return None
        found = {self._codes[m.group(0)] for m in self._pattern.finditer(compact(text))}
        return found.pop() if len(found) == 1 else None

    def forwarding_to(self, text: str) -> str | None:
        """The unit a request for someone names ("帮我转给工信局", "让人社局的人给我回个电话"),
        None when the citizen asks for an agent of the hotline ("转人工")."""
        if _A_PERSON_HERE.search(text):
            return None
        return self.named(text)


def _without_city(name: str) -> tuple[str, ...]:
    for prefix in ("石狮市", "市"):
        if name.startswith(prefix) and len(name) - len(prefix) >= 2:
            return (name[len(prefix) :],)
    return ()

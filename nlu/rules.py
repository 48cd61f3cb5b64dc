"""Short replies whose meaning is fixed: a classifier has too little to go on in one word."""

from __future__ import annotations

import re

_PUNCT = re.compile(r"[\s。！？!?,，.、~～…]+")

_SHORT: dict[str, str] = {}
for _intent, _words in {
    "affirm": "确认 确定 对 对的 是 是的 是啊 好 好的 好啊 行 可以 嗯 嗯嗯 没错 没问题 提交 确认提交 对对 对头 ok OK yes",
    "deny": "不 不对 不是 不用 不要 错了 取消 算了 否 no 不需要 不行",
    "human": "人工 转人工 人工服务 人工客服 找人工 真人 客服 接线员 0",
    "greet": "你好 您好 在吗 在不在 喂 hello hi 哈喽",
    "goodbye": "再见 拜拜 谢谢再见 没事了 没有了 好的谢谢 谢谢",
}.items():
    for _w in _words.split():
        _SHORT[_w.lower()] = _intent


def short_reply_intent(text: str) -> str | None:
    """The intent of a reply of a few characters that means one thing only, else None."""
    key = _PUNCT.sub("", text).lower()
    if len(key) > 6:
        return None
    return _SHORT.get(key)


def rating(text: str) -> str | None:
    """A satisfaction answer (满意 / 基本满意 / 不满意), from a digit or the words."""
    key = _PUNCT.sub("", text)
    if key in ("1", "满意", "非常满意", "很满意"):
        return "satisfied"
    if key in ("2", "基本满意", "还行", "一般", "还可以"):
        return "basically_satisfied"
    if key in ("3", "不满意", "很不满意", "非常不满意"):
        return "dissatisfied"
    return None

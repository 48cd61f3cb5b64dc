"""The built-in NLU engine: emergencies, entities, odd input, held-out accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from nlu.builtin import REQUEST, routing_score
from nlu.entities import find_phones, find_request_numbers, find_times
from nlu.evaluate import evaluate_engine, read_jsonl
from nlu.normalise import normalise
from nlu.training_data import DATA_DIR, HELDOUT_FILE, load_examples
from nlu.types import REQUEST_TYPES

EMERGENCIES = [
    ("厨房煤气泄漏了，味道特别浓，我老婆已经晕倒了", {"119", "120"}),
    ("对面楼着火了，火很大，好多烟往上冒", {"119"}),
    ("路口两辆车撞了，有个人躺在地上流了很多血", {"120"}),
    ("有人拿着刀在超市门口抢劫，现在还在这里", {"110"}),
    ("小孩掉河里了，快来人啊", {"110", "119"}),
]


@pytest.mark.parametrize(("text", "numbers"), EMERGENCIES)
def test_emergencies_are_recognised_with_the_right_number(nlu_engine, text, numbers):
    result = nlu_engine.parse(text)
    assert result.intent == "emergency"
    assert result.emergency is not None
    assert numbers <= set(result.emergency.numbers), result.emergency


@pytest.mark.parametrize(
    "text",
    [
        "上次燃气公司来安检的师傅说要换管子，这个费用谁出",
        "小区消防通道被车堵死了好几天",
        "我们楼下饭店油烟太大了",
    ],
)
def test_routine_matters_with_emergency_words_are_not_emergencies(nlu_engine, text):
    assert nlu_engine.parse(text).emergency is None


async def test_emergency_in_chat_is_answered_not_filed(service, conn):
    from tests.support.chat import ChatClient

    client = ChatClient(service.url)
    for text, numbers in EMERGENCIES:
        result = await client.say(text)
        assert set(result["emergency"]) >= numbers
        assert any(n in " ".join(result["replies"]) for n in numbers)
        assert result["request_number"] is None
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "empty"), ("   \n\t", "empty"), ("😀😡🙏🔥", "no_words"), ("。。。！！", "no_words")],
)
def test_unreadable_input_has_a_defined_result(nlu_engine, text, problem):
    result = nlu_engine.parse(text)
    assert result.problem == problem
    assert result.units == [] and not result.unit_confident
    assert result.emergency is None


def test_huge_and_mixed_input_is_classified(nlu_engine):
    huge = "我家楼下的KTV每天晚上唱到凌晨两三点，吵得孩子没法睡觉。" * 3500  # ~100 KB
    result = nlu_engine.parse(huge)
    assert result.problem == "too_long"
    assert result.units and result.request_type in {"complain", "report"}
    mixed = nlu_engine.parse("我的iPhone在Didi网约车上丢了, driver不接电话 help")
    assert mixed.problem is None and mixed.units


def test_entities():
    assert find_phones("电话13859901234或者0595-88123456，+86 138 5990 1234") == [
        "13859901234",
        "059588123456",
        "13859901234",
    ]
    assert find_phones("订单号20261123000012345") == []
    assert find_request_numbers("编号20261123-0042和202611230043") == [
        "20261123-0042",
        "20261123-0043",
    ]
    assert "昨天" in find_times("昨天晚上10点半开始吵") and any(
        "10点半" in t for t in find_times("昨天晚上10点半开始吵")
    )


def test_address_names_the_territorial_unit(nlu_engine):
    entities = nlu_engine.parse("祥芝镇大堡村村口的路灯坏了").entities
    assert entities.address is not None
    assert entities.address.area == "祥芝镇"
    assert entities.address.territorial_unit == "xiangzhi"
    assert "大堡村" in entities.address.text
    cpca = nlu_engine.parse("福建省泉州市石狮市湖滨街道振狮路120号楼下").entities.address
    assert (cpca.province, cpca.district, cpca.territorial_unit) == ("福建省", "石狮市", "hubin")


@pytest.mark.parametrize(
    ("spoken", "address"),
    [
        # speech arrives without punctuation: the verbs before a place are not part of it
        ("我要投诉湖滨街道振狮路120号工地晚上施工", "湖滨街道振狮路120号"),
        ("投诉宝盖镇塘后村有人偷倒垃圾", "宝盖镇塘后村"),
        ("我想反映一下石狮市凤里街道大仑社区路灯坏了", "石狮市凤里街道大仑社区"),
        ("举报灵秀镇钞坑村那边有个工厂排污水", "灵秀镇钞坑村"),
        ("我住在蚶江镇锦江村那个路口积水严重", "蚶江镇锦江村"),
    ],
)
def test_address_text_leaves_out_the_words_before_it(nlu_engine, spoken, address):
    assert nlu_engine.parse(spoken).entities.address.text == address


def test_local_matter_routes_to_the_territorial_unit(nlu_engine):
    result = nlu_engine.parse("永宁镇梅林村村委会门口的村道坑坑洼洼，下雨全是积水，村里没人管")
    assert result.units[0].code == "yongning"


def test_heldout_was_never_trained_on():
    trained = {e.text for e in load_examples()}
    held = [r.text for r in read_jsonl(HELDOUT_FILE)]
    assert not trained.intersection(held)


def test_heldout_accuracy(nlu_engine):
    report = evaluate_engine(nlu_engine, read_jsonl(HELDOUT_FILE))
    assert report["unit_top1"] >= 0.92, report
    assert report["unit_top3"] >= 0.98, report
    assert report["intent_accuracy"] >= 0.93, report
    assert report["accuracy_when_answered"] >= 0.96, report


def test_normalise_gives_one_spelling():
    assert normalise("ＡＢＣ１２３號樓") == "ABC123号楼"
    assert normalise("請問社保卡補辦要帶什麼") == "请问社保卡补办要带什么"
    assert normalise("我家楼下的路灯坏了") == "我家楼下的路灯坏了"  # simplified text is unchanged


def test_traditional_characters_route_like_simplified(nlu_engine):
    # the place is found in the traditional spelling too, so the territorial unit is named
    traditional = nlu_engine.parse("祥芝鎮大堡村村口的路燈壞了好幾天，晚上黑漆漆的")
    simplified = nlu_engine.parse("祥芝镇大堡村村口的路灯坏了好几天，晚上黑漆漆的")
    assert traditional.entities.address.territorial_unit == "xiangzhi"
    assert [u.code for u in traditional.units] == [u.code for u in simplified.units]
    assert traditional.request_type == simplified.request_type
    assert abs(traditional.units[0].probability - simplified.units[0].probability) < 1e-6


def test_routing_scores():
    p = np.array([[0.6, 0.3, 0.1], [0.5, 0.45, 0.05]])
    assert routing_score(p, "probability").tolist() == [0.6, 0.5]
    assert np.allclose(routing_score(p, "margin"), [0.3, 0.05])


def test_conversation_intents_beside_one_request_class(nlu_engine):
    # the intent classifier sees every request type as one class; the request-type classifier
    # names the type, and the parse's intent is that type
    classes = set(nlu_engine.intent_clf.classes_)
    assert REQUEST in classes and not classes.intersection(REQUEST_TYPES)
    requests = read_jsonl(HELDOUT_FILE)
    parsed = [nlu_engine.parse(r.text) for r in requests]
    # no request is taken for a conversation turn (the emergency detector decides emergencies
    # on its own: the n-gram-only test model raises it on 31 held-out requests, as before)
    assert {p.intent for p in parsed} - set(REQUEST_TYPES) <= {"emergency"}
    assert all(p.intent == p.request_type for p in parsed if p.intent in REQUEST_TYPES)
    # the n-gram-only test model: 0.842 (0.742 with the six types apart); with e5 0.917 (0.867)
    report = evaluate_engine(nlu_engine, read_jsonl(DATA_DIR / "heldout_conversation.jsonl"))
    assert report["intent_accuracy"] >= 0.82, report


def test_feature_scale_folded_into_the_weights():
    from scipy import sparse

    from nlu.builtin import make_classifier
    from nlu.linear import CalibratedLinear

    rng = np.random.default_rng(0)
    x = sparse.csr_matrix(rng.random((60, 5)))
    y = np.repeat(["a", "b", "c"], 20)
    scale = np.array([1.0, 1.0, 1.0, 0.75, 0.75])
    fitted = make_classifier("balanced", 2.0).fit(x @ sparse.diags(scale), y)
    model = CalibratedLinear.from_sklearn(fitted)
    model.scale_features(scale)
    expected = fitted.predict_proba(x @ sparse.diags(scale))
    assert np.allclose(model.predict_proba(x), expected, atol=1e-5)
    assert np.allclose(model.predict_proba(x[3]), expected[3:4], atol=1e-5)

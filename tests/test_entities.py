"""Entities as citizens give them: phone numbers in every spelling, places cut at real words."""

from __future__ import annotations

import pytest

from nlu.entities import EntityExtractor, find_phones
from nlu.gazetteer import Gazetteer
from services.core import phone_numbers


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor(Gazetteer.load())


@pytest.mark.parametrize(
    ("text", "phones"),
    [
        # inside a sentence, grouped with spaces or dashes
        ("你好我手机15960781234有问题打我", ["15960781234"]),
        ("号码 186 0595 3344", ["18605953344"]),
        ("135-0595-7788是我老公的", ["13505957788"]),
        ("办公室电话0595-8779 6655", ["059587796655"]),
        ("座机 0595 2266 8899", ["059522668899"]),
        ("（0595）87654321", ["059587654321"]),
        # Chinese digits as read aloud, with 幺, 两, 零 and 〇
        ("我的手机是一五九六零七八一二三四", ["15960781234"]),
        ("幺八六零五九五三三四四", ["18605953344"]),
        ("号码幺三五 零五九五 七七八八", ["13505957788"]),
        ("一三八两两三三四四五五", ["13822334455"]),
        ("幺三九〇五九五〇〇〇一", ["13905950001"]),
        ("电话是零五九五八七七九六六五五", ["059587796655"]),
        ("一五九，六零七八，一二三四", ["15960781234"]),  # pauses written as commas
        # country code in every form
        ("+86 159 6078 1234", ["15960781234"]),
        ("+86-159-6078-1234", ["15960781234"]),
        ("8615960781234", ["15960781234"]),
        ("0086 159 6078 1234", ["15960781234"]),
        ("+86 595 8779 6655", ["059587796655"]),
        # a local landline without its area code, when the message says it is a phone
        ("家里座机87796655", ["059587796655"]),
        ("电话 8779-6655", ["059587796655"]),
        ("87796655", ["059587796655"]),
        ("我们店里花了87796655块装修", []),
        # the same number read twice must not become one 22-digit number
        ("15960781234 15960781234", ["15960781234", "15960781234"]),
        ("1596078123415960781234", ["15960781234", "15960781234"]),
        ("一五九六零七八一二三四 一五九六零七八一二三四", ["15960781234", "15960781234"]),
        ("159 6078 1234，159 6078 1234", ["15960781234", "15960781234"]),
        ("两个号码15960781234和18605953344", ["15960781234", "18605953344"]),
        # numbers that are not phones
        ("我的件20261201-0017怎么还没处理", []),
        ("受理号202612010017", []),
        ("身份证号码350581198805061234", []),
        ("身份证35058119880506123x", []),
        ("快递单号773012345678901", []),
        ("2026年12月1日下午3点", []),
        ("电话20261201", []),
        ("1596078123", []),  # ten digits: one short
        ("159607812345", []),  # twelve: one too many
        ("打12345没用", []),
        ("我报了110", []),
    ],
)
def test_phones_in_every_spelling(text, phones):
    assert find_phones(text) == phones


def test_phone_digits_are_not_read_as_an_address(extractor):
    entities = extractor.extract("振狮路 电话159 6078 1234")
    assert entities.phones == ["15960781234"]
    assert entities.address is not None and entities.address.text == "振狮路"


def test_request_number_is_not_a_phone(extractor):
    entities = extractor.extract("查一下20261201-0017，我电话15960781234")
    assert entities.request_numbers == ["20261201-0017"]
    assert entities.phones == ["15960781234"]


@pytest.mark.parametrize(
    ("raw", "canonical", "e164"),
    [
        ("+8615960781234", "15960781234", "+8615960781234"),
        ("tel:+86 159 6078 1234", "15960781234", "+8615960781234"),
        ("+8659587796655", "059587796655", "+8659587796655"),
        ("0595-87796655", "059587796655", "+8659587796655"),
        ("15960781234", "15960781234", "+8615960781234"),
        ("+442079460000", "+442079460000", "+442079460000"),
    ],
)
def test_provider_numbers_have_one_canonical_form(raw, canonical, e164):
    assert phone_numbers.canonical(raw) == canonical
    assert phone_numbers.to_e164(canonical) == e164


@pytest.mark.parametrize(
    "raw", [None, "", "anonymous", "client:alice", "sip:bob@example.com", "+266696687", "+8612"]
)
def test_what_is_not_a_number_has_no_canonical_form(raw):
    assert phone_numbers.canonical(raw) is None


@pytest.mark.parametrize(
    ("text", "place"),
    [
        # the place ends at its place word, not at a 路 inside 路灯
        ("建议在湖滨公园多装几个路灯", "湖滨公园"),
        ("希望湖滨公园晚上多安排巡逻", "湖滨公园"),
        ("新华路菜市场太脏了", "新华路菜市场"),
        ("石狮市第一医院门口乱停车", "石狮市第一医院"),
        ("世茂天城小区3号楼电梯坏了", "世茂天城小区3号楼"),
        ("金林社区12栋楼下有人乱停车", "金林社区12栋"),
        ("凤里街道新华路18号旁边在施工", "凤里街道新华路18号"),
        ("希望在长福路增加公交站", "长福路"),
        ("我要举报振狮路上一家饭店占道经营", "振狮路"),
        ("振狮路口的垃圾三天没人收", "振狮路"),
        ("宝岛路边上的树倒了", "宝岛路"),
        ("塘后村口的桥裂了", "塘后村"),
        ("鸿山镇东埔村村口有人倒垃圾", "鸿山镇东埔村"),
        ("祥芝镇大堡村村口的路灯坏了", "祥芝镇大堡村"),
        ("湖滨小学门口有人卖三无食品", "湖滨小学"),
        ("石狮服装城门口的井盖丢了", "石狮服装城"),
        ("灵秀镇华山村村部门口积水", "灵秀镇华山村"),
        ("电话15960781234地址振狮路", "振狮路"),
        ("永宁镇梅林村村委会门口的村道坑坑洼洼", "永宁镇梅林村村委会"),
    ],
)
def test_place_is_cut_at_real_place_words(extractor, text, place):
    address = extractor.extract(text).address
    assert address is not None and address.text == place


@pytest.mark.parametrize(
    "text",
    [
        "路口的路灯坏了",
        "建议多装几个路灯",
        "小区门口垃圾没人清",
        "我家门口的马路上有个大坑",
        "公园里太吵了",
        "市场监管局不作为",
        "他家在五楼",
        "2号楼3单元502",
        "修路修了半年还没修好",
        "我们村的路灯坏了",
        # people, errands and kinds of places (issue 13: 地点 "老乡", "上门" in read-backs)
        "我老乡说这边办事要预约",
        "有两个人说要上门检查煤气管",
        "孩子想读公办小学怎么报名",
        "人才公寓要怎么申请",
    ],
)
def test_no_place_where_none_is_named(extractor, text):
    address = extractor.extract(text).address
    assert address is None, address


def test_numbers_and_rooms_of_no_particular_place_are_no_place(extractor):
    # "号" and "室" end place names (3号楼, 302室); "手机号", "信号", "办公室" name none
    for text in ("手机号 13850476120 移动的", "移动信号太差了", "电话打厂里办公室就行"):
        assert extractor.extract(text).address is None, text
    assert extractor.extract("湖滨街道3号楼302室").address.text == "湖滨街道3号楼302室"


def test_a_question_about_the_town_names_no_place(extractor):
    assert extractor.extract("想问问镇里这个钱去哪了，我电话 18760937625").address is None

"""What the bot says, in plain Chinese. Every channel sends these texts as they are."""

from __future__ import annotations

from nlu.emergency import EMERGENCY_LABELS
from nlu.types import REQUEST_TYPE_LABELS

GREETING = "您好，这里是12345市民服务热线智能客服。请直接说明您要咨询、投诉、求助、举报或建议的事项，我来为您办理。"
GOODBYE = "感谢您联系12345，祝您生活愉快，再见。"
NOT_UNDERSTOOD = (
    "抱歉，我没有完全理解。请用一两句话说明您遇到的问题或想咨询的事项；如需人工服务，请回复“人工”。"
)
HANDOFF = "好的，正在为您转接人工坐席，请稍候。您之前的留言坐席都能看到，无需重复。"
HANDOFF_UNSURE = "抱歉，我暂时没能理解您的问题，已为您转接人工坐席，请稍候。"
WAITING_AGENT = "人工坐席正在接入，请稍候；您的留言已记录。"
ASK_LOCATION = "请问问题发生的具体地点在哪里？请说明街道（镇）、路名、小区或门牌号。"
ASK_PHONE = "请留下您的联系电话，方便承办单位与您联系核实。"
ASK_PHONE_AGAIN = (
    "没有识别到有效的电话号码，请输入11位手机号或带区号的固定电话；"
    "不便留电话请回复“不留”，我们照样登记；如要放弃登记请回复“取消”。"
)
DETAILS_NOTED = "已记下您的联系方式。请问您要反映或咨询什么问题？请直接描述。"
NO_NUMBER_SEEN = (
    "网页和微信留言看不到您的电话号码，这次先不留电话登记；需要承办单位回电的话，"
    "随时告诉我号码即可。"
)
FILED_WITHOUT_PHONE = "您没有留联系电话，承办单位将无法与您电话联系，请凭诉求编号查询办理结果。"
ASK_DETAILS = "好的，请详细说说您要反映的情况：发生了什么事、在什么地方。"
ASK_WHAT_TO_CHANGE = (
    "好的，请直接说明要修改的内容，例如“地点改成……”或“电话是……”；放弃请回复“取消”。"
)
KB_UNRESOLVED_OFFER = (
    "抱歉没能帮到您。需要的话，我可以把您的问题登记下来，转相关单位答复您（请回复“登记”），"
    "也可以为您转人工坐席（请回复“人工”）；不需要请回复“不用了”。"
)
NOT_FILED = "好的，本次不登记。如需登记或还有其他问题，请直接说明。"
KB_DONE = "好的，如还有其他问题，欢迎随时联系12345。"
YOU_ARE_WELCOME = "不客气，很高兴能帮到您。还有其他问题可以继续咨询。"
CANCELLED = "好的，已取消本次登记。如需反映其他问题，请直接描述。"
ASK_REQUEST_NUMBER = "请提供您的诉求编号（例如 20261123-0001），我为您查询办理进度。"
FEEDBACK_THANKS = "感谢您的反馈！还有其他问题可以继续咨询。"
FEEDBACK_SORRY = (
    "抱歉没能帮到您。您可以补充说明具体情况，我为您登记转相关部门答复；也可以回复“人工”转人工坐席。"
)
NO_PROVIDER = (
    "抱歉，暂未找到相关的登记便民服务商。您可以补充说明需要什么服务，或回复“人工”咨询坐席。"
)


def closest_answer(question: str) -> str:
    """On the phone a list of three questions is too long to listen to: the closest one is
    named, and its answer follows, so the caller can tell whether it is what they asked."""
    return f"您问的可能是：{question}"


AFTER_EMERGENCY = "好的，请先确保安全。如还有需要12345办理的事项，请直接说明。"


def mask_phone(phone: str | None) -> str:
    if not phone:
        return "未提供"
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 11 else phone


def confirm(draft: dict, unit_name: str | None) -> str:
    parts = [
        f"请确认您要登记的{REQUEST_TYPE_LABELS[draft['request_type']]}事项：{draft['content']}"
    ]
    if draft.get("location"):
        parts.append(f"地点：{draft['location']}")
    if draft.get("phone"):
        parts.append(f"联系电话：{mask_phone(draft['phone'])}")
    if unit_name:
        parts.append(f"拟转办单位：{unit_name}")
    return "；".join(parts) + "。确认无误请回复“确认”；需要修改请直接说明；放弃请回复“取消”。"


def filed(request_number: str, request_type: str, unit_name: str | None) -> str:
    where = f"转交{unit_name}办理" if unit_name else "分派承办单位"
    return (
        f"已为您登记{REQUEST_TYPE_LABELS[request_type]}，诉求编号：{request_number}。"
        f"中心将在1个工作日内{where}，办理结果会通知您；您可随时凭诉求编号查询进度。"
    )


def repeat_noted(first_number: str, reports: int, escalated: bool) -> str:
    text = f"我们注意到您反映的问题此前已登记（诉求编号 {first_number}），这是第{reports}次反映，已合并跟踪。"
    if escalated:
        text += "该问题已提级督办，由督查股跟进直至解决。"
    return text


def praise_filed(request_number: str) -> str:
    return f"感谢您的肯定！您的表扬已登记，编号：{request_number}，我们会转达给相关单位。"


def emergency(numbers: tuple[str, ...]) -> str:
    whom = "、".join(EMERGENCY_LABELS.get(n, n) for n in numbers)
    return f"这可能是紧急情况！请立即拨打 {whom}。如有人员受伤或危险仍在继续，请先确保自身安全。12345不处理紧急警情，以免耽误救援。"


KB_FEEDBACK_QUESTION = "以上回答是否解决了您的问题？请回复“是”或“否”。"


def kb_choices(questions: list[str]) -> str:
    lines = "\n".join(f"{i}. {q}" for i, q in enumerate(questions, start=1))
    return (
        f"您想咨询的是以下哪个问题？请回复序号：\n{lines}\n"
        "都不是请回复“都不是”，我们为您登记，由相关部门答复。"
    )


def progress(request_number: str, status_label: str, unit_name: str | None) -> str:
    unit = f"，承办单位：{unit_name}" if unit_name else ""
    return f"诉求编号 {request_number} 当前状态：{status_label}{unit}。"


def not_found(request_number: str) -> str:
    return f"没有查到诉求编号 {request_number}，请核对后重新输入。"


def own_orders(lines: list[str]) -> str:
    return "您近期登记的诉求：\n" + "\n".join(lines)


def providers(lines: list[str]) -> str:
    return (
        "这类需求属于市场服务，12345为您推荐以下登记在册的便民服务商（请自行联系并确认价格）：\n"
        + "\n".join(lines)
    )

"""Real-HTTP fakes of Slack and OpenAI, plus Slack request signing helpers, for tests."""

from .openai_server import Drop, Fail, FakeOpenAI, Hang, RecordedRequest, Reply
from .slack_server import Call, FakeSlack
from .slack_signing import sign_request

__all__ = [
    "Call",
    "Drop",
    "Fail",
    "FakeOpenAI",
    "FakeSlack",
    "Hang",
    "RecordedRequest",
    "Reply",
    "sign_request",
]

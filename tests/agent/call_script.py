"""One voice call through the real entrypoint, run as its own process by the persistence tests.

    python -m tests.agent.call_script STORE_URL IDENTITY first|returning

Prints one JSON line: the greeting instructions the LLM got and every tool output.
"""

from __future__ import annotations

import asyncio
import json
import sys

from stores import open_store
from tests.agent.helpers import call, fake_call, system_texts, tool_outputs
from tests.fakes.scripted_llm import ScriptedLLM, Step

SCENARIOS: dict[str, tuple[list[Step], list[str]]] = {
    "first": (
        [
            ["Hello, who are you?"],
            [call("remember", category="personal", key="name", value="Priya")],
            ["Hi Priya."],
            [call("remember", category="", key="favourite colour", value="saffron")],
            ["Saffron, lovely."],
        ],
        ["I'm Priya", "my favourite colour is saffron"],
    ),
    "returning": (
        [["Welcome back!"], [call("recall", query="favourite colour")], ["Saffron."]],
        ["what's my favourite colour?"],
    ),
}


async def main(url: str, identity: str, scenario: str) -> dict[str, object]:
    steps, turns = SCENARIOS[scenario]
    scripted = ScriptedLLM(steps)
    outputs: list[str] = []
    async with (
        await open_store(url) as store,
        fake_call(store, scripted, identity, job_id=f"job-{scenario}") as session,
    ):
        for text in turns:
            outputs += tool_outputs(await session.run(user_input=text))
    return {"greeting": system_texts(scripted.requests[0])[-1], "tool_outputs": outputs}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))

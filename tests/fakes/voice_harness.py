"""Minimal offline *voice-path* harness: a scripted streaming STT + a silent AudioInput.

session.run(user_input=...) and room text input go through generate_reply() and do NOT call
Agent.on_user_turn_completed. To exercise that hook offline you need the audio path:
  AgentSession(stt=ScriptedSTT(), vad=None, llm=..., turn_handling={"turn_detection": "stt", ...})
  session.input.audio = SilentAudioInput()
  await session.start(agent)
  stt.say("hello")   # emits START_OF_SPEECH, FINAL_TRANSCRIPT, END_OF_SPEECH
"""

from __future__ import annotations

import asyncio

from livekit import rtc
from livekit.agents import stt
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.voice.io import AudioInput


class SilentAudioInput(AudioInput):
    """Yields 20ms of silence every 20ms forever (keeps the STT stream fed)."""

    def __init__(self, sample_rate: int = 16000) -> None:
        super().__init__(label="SilentAudioInput")
        self._sr = sample_rate

    async def __anext__(self) -> rtc.AudioFrame:
        await asyncio.sleep(0.02)
        n = self._sr // 50
        return rtc.AudioFrame(data=b"\x00\x00" * n, sample_rate=self._sr, num_channels=1, samples_per_channel=n)


class ScriptedSTT(stt.STT):
    def __init__(self) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=False))
        self._streams: list[_ScriptedSTTStream] = []

    @property
    def model(self) -> str:
        return "scripted-stt"

    @property
    def provider(self) -> str:
        return "offline"

    async def _recognize_impl(self, buffer, *, language=None, conn_options=DEFAULT_API_CONNECT_OPTIONS):
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[stt.SpeechData(language=LanguageCode("en"), text="")],
        )

    def stream(self, *, language=None, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS):
        s = _ScriptedSTTStream(stt=self, conn_options=conn_options)
        self._streams.append(s)
        return s

    def say(self, text: str, *, preflight: bool = False) -> None:
        """Simulate one complete user utterance on the most recent stream.
        preflight=True also emits a PREFLIGHT_TRANSCRIPT first (triggers preemptive generation)."""
        s = self._streams[-1]
        s._event_ch.send_nowait(stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH))
        if preflight:
            s._event_ch.send_nowait(
                stt.SpeechEvent(
                    type=stt.SpeechEventType.PREFLIGHT_TRANSCRIPT,
                    alternatives=[stt.SpeechData(language=LanguageCode("en"), text=text, confidence=1.0)],
                )
            )
        s._event_ch.send_nowait(
            stt.SpeechEvent(
                type=stt.SpeechEventType.FINAL_TRANSCRIPT,
                alternatives=[stt.SpeechData(language=LanguageCode("en"), text=text, confidence=1.0)],
            )
        )
        s._event_ch.send_nowait(stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH))


class _ScriptedSTTStream(stt.RecognizeStream):
    async def _run(self) -> None:
        async for _ in self._input_ch:  # drain audio; events are injected by ScriptedSTT.say
            pass

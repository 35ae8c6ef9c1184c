"""`GET /me`: who the caller is, their profile and whether the agent may remember things about them."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.auth import CurrentUser
from api.services import Services

router = APIRouter(tags=["profile"])


class ProfileOut(BaseModel):
    id: str
    identity: str | None
    email: str | None
    created_at: datetime
    last_seen_at: datetime


class Me(BaseModel):
    """The signed-in user."""

    user_id: str
    email: str | None = Field(description="from the profile, else from the access token")
    memory_enabled: bool = Field(description="false: the agent learns nothing new about this user")
    profile: ProfileOut | None = Field(description="null until the user first talks or chats")


async def describe(services: Services, user_id: str, token_email: str | None) -> Me:
    profile = await services.store.profiles.get(user_id)
    return Me(
        user_id=user_id,
        email=(profile.email if profile else None) or token_email,
        memory_enabled=profile.memory_enabled if profile else services.settings.memory_default_enabled,
        profile=ProfileOut(**profile.model_dump(include=set(ProfileOut.model_fields))) if profile else None,
    )


@router.get("/me", response_model=Me)
async def get_me(request: Request, user: CurrentUser) -> Me:
    """The caller's id, email, profile and consent switch (nothing is created by asking)."""
    services: Services = request.app.state.services
    return await describe(services, user.user_id, user.email)

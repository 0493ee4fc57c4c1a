"""Request and response bodies of the HTTP API (and the entity records the gRPC service accepts).

- ``POST /v1/embeddings``: the OpenAI embeddings API, so any OpenAI client works.
- ``POST /embed``: the Hugging Face text-embeddings-inference (TEI) API.
- ``POST /v1/entities/{job,profile,resume}/embed``: structured entities, rendered
  by the training templates (``jude.modeling.templates``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from jude.data.schema import SENIORITIES


# ---- text: valid Unicode only -----------------------------------------------------------
def invalid_unicode(text: str) -> str | None:
    """What makes ``text`` impossible to encode as UTF-8, or None when it is valid text.

    JSON can carry a lone surrogate (``"\\ud800"``), and Python decodes it into a ``str``
    that no tokenizer accepts; it is refused here with a message instead of failing in the model.
    """
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"contains a lone surrogate U+{ord(text[e.start]):04X} at position {e.start}; send valid Unicode text"
    return None


def _valid_text(value: Any) -> Any:
    """Runs before pydantic's own string checks (whose message for this case names no reason)."""
    problem = invalid_unicode(value) if isinstance(value, str) else None
    if problem:
        raise PydanticCustomError("invalid_unicode", problem)
    return value


def _valid_texts(value: Any) -> Any:
    """The same check for a field that takes a string or a list of strings; names the item that is wrong."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            problem = invalid_unicode(item) if isinstance(item, str) else None
            if problem:
                raise PydanticCustomError("invalid_unicode", "item {index} {problem}", {"index": i, "problem": problem})
        return value
    return _valid_text(value)


Text = Annotated[str, BeforeValidator(_valid_text)]
"""A string that is valid Unicode (no lone surrogates)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


# ---- OpenAI ---------------------------------------------------------------------------
class OpenAIEmbeddingRequest(_Body):
    input: str | list[str] = Field(..., description="A text or a list of texts (token-id arrays are not accepted).")
    model: Text | None = Field(None, description="Accepted for compatibility; the server serves one model.")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="'base64': little-endian float32 bytes, base64-encoded (the OpenAI client's default)."
    )
    dimensions: int | None = Field(None, gt=0, description="Must equal the model's dimension when given.")
    user: Text | None = None
    truncate: bool = Field(True, description="jude extension: false refuses over-long texts with 422.")

    _input_is_text = field_validator("input", mode="before")(_valid_texts)


class OpenAIEmbedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: Usage


# ---- TEI ------------------------------------------------------------------------------
class TEIEmbedRequest(_Body):
    inputs: str | list[str] = Field(..., description="A text or a list of texts.")
    normalize: bool = Field(True, description="L2-normalise the embeddings.")
    truncate: bool = Field(True, description="Cut texts to the token limit; false refuses them with 422.")

    _inputs_are_text = field_validator("inputs", mode="before")(_valid_texts)


# ---- entities -------------------------------------------------------------------------
class JobEntity(_Body):
    """The fields the job template reads (extra fields such as job_id are ignored)."""

    title: Text
    company: Text
    location: Text
    remote: bool
    seniority: Literal[SENIORITIES]  # type: ignore[valid-type]
    min_years: float = Field(..., ge=0, le=80, allow_inf_nan=False)
    skills: list[str] | str
    description: Text

    _skills_are_text = field_validator("skills", mode="before")(_valid_texts)


class ProfileEntity(_Body):
    """The fields the profile template reads."""

    headline: Text
    title: Text
    location: Text
    years_experience: float = Field(..., ge=0, le=80, allow_inf_nan=False)
    skills: list[str] | str
    summary: Text

    _skills_are_text = field_validator("skills", mode="before")(_valid_texts)


class ResumeEntity(_Body):
    """The field the resume template reads."""

    resume_text: Text = Field(..., min_length=1)


ENTITY_MODELS: dict[str, type[BaseModel]] = {"job": JobEntity, "profile": ProfileEntity, "resume": ResumeEntity}


def _entity_request(entity_model: type[BaseModel], name: str) -> type[BaseModel]:
    class EntityEmbedRequest(_Body):
        entity: entity_model | None = Field(None, description="One entity.")  # type: ignore[valid-type]
        entities: list[entity_model] | None = Field(None, description="Several entities.")  # type: ignore[valid-type]
        truncate: bool = Field(True, description="Cut to the template's token budget; false refuses with 422.")

        @model_validator(mode="after")
        def _one_of(self):
            if (self.entity is None) == (self.entities is None):
                raise ValueError("send exactly one of 'entity' (one object) or 'entities' (a list)")
            return self

        def records(self) -> list[dict]:
            items = [self.entity] if self.entity is not None else list(self.entities)
            return [e.model_dump() for e in items]

    EntityEmbedRequest.__name__ = EntityEmbedRequest.__qualname__ = name
    return EntityEmbedRequest


JobEmbedRequest = _entity_request(JobEntity, "JobEmbedRequest")
ProfileEmbedRequest = _entity_request(ProfileEntity, "ProfileEmbedRequest")
ResumeEmbedRequest = _entity_request(ResumeEntity, "ResumeEmbedRequest")


class EntityEmbedResponse(BaseModel):
    object: Literal["list"] = "list"
    entity_type: str
    data: list[OpenAIEmbedding]
    model: str
    templates_version: str
    usage: Usage


# ---- errors and status ----------------------------------------------------------------
class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: int


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "payload_too_large",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
    499: "client_closed_request",
    503: "service_unavailable",
}


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    """The body of every error response (the OpenAI error shape): ``{"error": {message, type, param, code}}``."""
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "error"), "param": param, "code": status}}


class InfoResponse(BaseModel):
    model_name: str
    model_uri: str
    registry_version: str | None
    dimension: int
    max_tokens: int
    max_lengths: dict[str, int]
    templates_version: str
    template_style: str
    pooling: str
    normalize: bool
    backend: str = Field(description="The forward pass: torch or onnx (ONNX Runtime).")
    max_client_batch_size: int
    max_batch_size: int

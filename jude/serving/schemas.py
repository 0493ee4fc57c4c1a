"""Request and response bodies of the HTTP API (and the entity records the gRPC service accepts).

- ``POST /v1/embeddings``: the OpenAI embeddings API, so any OpenAI client works.
- ``POST /embed``: the Hugging Face text-embeddings-inference (TEI) API.
- ``POST /v1/entities/{job,profile,resume}/embed``: structured entities, rendered
  by the training templates (``jude.modeling.templates``). The entity models are
  derived from the entity contract (``jude.entities``): its template fields, types and bounds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jude.entities import Text, entity_model
from jude.entities import invalid_unicode as invalid_unicode  # re-exported: the service checks texts with it
from jude.entities import valid_texts as _valid_texts


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


# ---- entities ----------------------------------------------------------------------------
# The fields each template reads, with the entity contract's types and bounds (jude.entities); extra fields such as
# job_id are ignored.
JobEntity = entity_model("job", base=_Body, name="JobEntity")
ProfileEntity = entity_model("profile", base=_Body, name="ProfileEntity")
ResumeEntity = entity_model("resume", base=_Body, name="ResumeEntity")

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

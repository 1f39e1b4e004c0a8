"""The schema's building blocks (vovnet/config.py): constrained number types, the strict Section base, a
pixel budget. Below the schema's sections, so that they can live in more than one module."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
Share = Annotated[float, Field(ge=0, le=1)]
Ref = Annotated[str, Field(pattern=r"^[^/\s]+/[^/\s]+$", description="dataset/split")]
StrList = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


class Section(BaseModel):
    """Unknown keys are errors; true/false is never read as a number."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info) -> Any:
        if isinstance(value, bool) and _numeric(cls.model_fields[info.field_name].annotation):
            raise ValueError("expected a number, not true/false")
        return value


def _numeric(ann: Any) -> bool:
    """Whether a field's type is a number (possibly optional, constrained or in a union), not a bool."""
    if ann in (int, float):
        return True
    return get_origin(ann) in (Union, Annotated, types.UnionType) and any(_numeric(a) for a in get_args(ann))


KeepShare = Annotated[float, Field(gt=0, le=1)]


class Budget(Section):
    min_pixels: PosInt
    max_pixels: PosInt

    @model_validator(mode="after")
    def _min_le_max(self):
        if self.min_pixels > self.max_pixels:
            raise ValueError(f"min_pixels must be <= max_pixels, got {self.min_pixels} > {self.max_pixels}")
        return self

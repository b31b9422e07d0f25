"""Flows whose parameters and results are pydantic (v1) models, built with pydantic
installed in the active virtualenv (scripts/build-python-guests makes one)."""

from typing import List, Literal, Optional

import pydantic
from pydantic import BaseModel, validator

from weir import flow, task


class Order(BaseModel):
    id: int
    item: str
    quantity: int = 1
    size: Literal["small", "large"] = "small"
    notes: Optional[str] = None

    @validator("item")
    def item_is_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an order names its item")
        return value.strip()


class Batch(BaseModel):
    orders: List[Order]


@task
def total(batch: Batch) -> dict:
    """Sums the quantities, saying what it was given."""
    return {
        "total": sum(o.quantity for o in batch.orders),
        "given": type(batch).__name__,
        "order": type(batch.orders[0]).__name__,
    }


@task
def biggest(batch: Batch) -> Order:
    """The order with the largest quantity, as a model."""
    return max(batch.orders, key=lambda o: o.quantity)


@flow(name="orders")
def orders(batch: Batch, scale: int = 1) -> dict:
    summary = total(batch)
    big = biggest(batch)
    return {
        "total": summary["total"] * scale,
        "given": summary["given"],
        "order": summary["order"],
        "biggest": big,
        "biggest_is_model": isinstance(big, BaseModel),
        "pydantic": pydantic.VERSION.split(".")[0],
    }


@flow(name="orders-unchecked", validate_parameters=False)
def orders_unchecked(batch: Batch) -> str:
    """Without validation a flow is given what its models make of the JSON, or the JSON
    itself when they reject it."""
    return type(batch).__name__

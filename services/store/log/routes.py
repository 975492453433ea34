"""The tamper-evident log's endpoints (CONTRACT 8): the signed head, its key, RFC 9162
proofs and the entries in tree order for auditors."""

from __future__ import annotations

import base64
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from core.errors import InvalidInput, NotFound, Unavailable
from core.keys import ApiKey, Role
from core.openapi import AUTHENTICATED, problems
from schemas.log import (
    ConsistencyProof,
    InclusionProof,
    LogEntries,
    LogKey,
    SignedHead,
    TreeHead,
)
from services.store.state import StoreState, state

router = APIRouter(tags=["log"])
State = Annotated[StoreState, Depends(state)]
MAX_ENTRIES = 10_000
"""Entries per page: about 7 MB of JSON for the demo's reports."""


def _anyone(request: Request) -> ApiKey:
    return state(request).auth_any(request)


def _reader(request: Request) -> ApiKey:
    return state(request).auth_reader(request)


Anyone = Annotated[ApiKey, Depends(_anyone)]
Reader = Annotated[ApiKey, Depends(_reader)]


def _head(st: StoreState) -> SignedHead:
    head = st.log.current_head()
    if head is None:
        raise Unavailable(
            "no tree head has been signed yet",
            retry_after_s=max(1, int(st.settings.log_head_interval_s)),
            hint="heads are published once reports were stored (TRUCE_LOG_HEAD_INTERVAL_S)",
        )
    return head


def _size(name: str, value: int, head: SignedHead, minimum: int = 1) -> int:
    if not minimum <= value <= head.tree_size:
        raise InvalidInput(
            f"{name} {value} is not between {minimum} and the head's tree size {head.tree_size}",
            errors=[{"loc": ["query", name], "msg": f"expected {minimum}..{head.tree_size}"}],
        )
    return value


@router.get(
    "/v1/log/head",
    summary="The latest signed tree head of the log",
    response_model=TreeHead,
    responses=problems(*AUTHENTICATED, 503),
)
def head(st: State, _key: Anyone) -> dict[str, Any]:
    return _head(st).public()


@router.get(
    "/v1/log/key",
    summary="The Ed25519 public key tree heads are signed with",
    response_model=LogKey,
    responses=problems(*AUTHENTICATED, 503),
)
def key(st: State, _key: Anyone) -> LogKey:
    if st.log.signer is None:
        raise Unavailable("this store holds no log signing key (TRUCE_LOG_PUBLISHER is off)")
    return st.log.signer.public()


@router.get(
    "/v1/log/proof/inclusion",
    summary="RFC 9162 audit path of a leaf (a partner: its own reports only)",
    response_model=InclusionProof,
    responses=problems(*AUTHENTICATED, 404, 422, 503),
)
def inclusion(
    st: State,
    key: Anyone,
    leaf_hash: Annotated[str, Query(pattern=r"^[0-9a-fA-F]{64}$")],
    tree_size: Annotated[int, Query(ge=1)],
) -> InclusionProof:
    current = _head(st)
    _size("tree_size", tree_size, current)
    leaf = bytes.fromhex(leaf_hash)
    index = st.log.tree.index_of(leaf, tree_size)
    if index is not None and key.role is Role.PARTNER:
        _, _, entry = st.log.entries(index, index + 1)[0]
        if _org(entry) != key.org:
            index = None  # another organisation's leaf is not there for this key
    if index is None:
        raise NotFound(f"no leaf {leaf_hash.lower()} visible to this key in the first {tree_size}")
    return InclusionProof(
        leaf_index=index,
        tree_size=tree_size,
        leaf_hash=leaf.hex(),
        root_hash=st.log.tree.root(tree_size).hex(),
        audit_path=[h.hex() for h in st.log.tree.inclusion(index, tree_size)],
    )


def _org(entry: bytes) -> str | None:
    try:
        value = orjson.loads(entry)
    except ValueError:
        return None
    return value.get("org") if isinstance(value, dict) else None


@router.get(
    "/v1/log/proof/consistency",
    summary="RFC 9162 proof that the tree of `first` leaves is a prefix of that of `second`",
    response_model=ConsistencyProof,
    responses=problems(*AUTHENTICATED, 422, 503),
)
def consistency(
    st: State,
    _key: Anyone,
    first: Annotated[int, Query(ge=0)],
    second: Annotated[int, Query(ge=0)],
) -> ConsistencyProof:
    current = _head(st)
    _size("second", second, current)
    if first > second:
        raise InvalidInput(
            f"first {first} is larger than second {second}",
            errors=[{"loc": ["query", "first"], "msg": "expected first <= second"}],
        )
    tree = st.log.tree
    return ConsistencyProof(
        first=first,
        second=second,
        first_root=tree.root(first).hex(),
        second_root=tree.root(second).hex(),
        consistency_path=[h.hex() for h in tree.consistency(first, second)],
    )


@router.get(
    "/v1/log/entries",
    summary="Leaves in tree order, the exact record bytes in base64 (paged)",
    response_model=LogEntries,
    responses=problems(*AUTHENTICATED, 403, 422, 503),
)
def entries(
    st: State,
    _key: Reader,
    start: Annotated[int, Query(ge=0)],
    end: Annotated[int, Query(ge=1)],
) -> Response:
    """``[start, end)`` within the current head; at most 10,000 per answer, so ``end`` in
    the answer may be smaller than asked: ask again from there."""
    current = _head(st)
    if not start < end <= current.tree_size:
        raise InvalidInput(
            f"entries [{start}, {end}) are not within the tree of {current.tree_size}",
            errors=[
                {"loc": ["query", "end"], "msg": f"expected start < end <= {current.tree_size}"}
            ],
        )
    end = min(end, start + MAX_ENTRIES)
    rows = st.log.entries(start, end)
    body = {
        "start": start,
        "end": end,
        "tree_size": current.tree_size,
        "entries": [
            {
                "index": start + i,
                "partition": p,
                "offset": o,
                "leaf_input": base64.b64encode(entry).decode(),
            }
            for i, (p, o, entry) in enumerate(rows)
        ],
    }  # written directly: validating 10,000 entries per page again took most of its time
    return Response(orjson.dumps(body), media_type="application/json")

"""Transactions (Prefect's ``prefect.transactions``): the task runs a flow calls inside
``with transaction():`` stage their results and hooks, committed together when the
outermost transaction commits (each task's ``on_commit`` hooks run and its cache record is
written), or rolled back when an exception leaves it (the ``on_rollback`` hooks of the
tasks that completed inside it run, newest first)::

    from weir import flow, task
    from weir.transactions import transaction

    @task
    def write_file(contents: str) -> None:
        ...

    @write_file.on_rollback
    def del_file(txn):
        print("undo", txn.get("path"))

    @flow
    def pipeline(contents: str) -> None:
        with transaction() as txn:
            txn.set("path", "side-effect.txt")
            write_file(contents)
            quality_test()

A ``key`` makes the work idempotent across runs (``if txn.is_committed(): return``);
``isolation_level=IsolationLevel.SERIALIZABLE`` holds a lock on the key, across every
node, from begin to commit or rollback. Begin and end are recorded in the run's journal,
so a run executed again after a crash neither commits twice nor loses a rollback."""

from __future__ import annotations

import contextlib
import copy
import enum
import json
from typing import Any, Iterator, Optional

from . import _context, _host, _json, exceptions

__all__ = ["CommitMode", "IsolationLevel", "Transaction", "TransactionState", "get_transaction",
           "transaction"]


class IsolationLevel(enum.Enum):
    READ_COMMITTED = "READ_COMMITTED"
    SERIALIZABLE = "SERIALIZABLE"


class CommitMode(enum.Enum):
    EAGER = "EAGER"
    LAZY = "LAZY"
    OFF = "OFF"


class TransactionState(enum.Enum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    STAGED = "STAGED"
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"


class _NotSet:
    pass


NotSet: Any = _NotSet()

_open: list["Transaction"] = []


class Transaction:
    """A transaction of the flow run (what ``with transaction() as txn`` gives), or what a
    task's ``on_commit`` and ``on_rollback`` hooks receive."""

    def __init__(self, key: Optional[str] = None, *, handle: Any = None,
                 values: Optional[dict[str, Any]] = None, state: TransactionState = TransactionState.PENDING,
                 parent: Optional["Transaction"] = None) -> None:
        self.key = key
        self._handle = handle
        self._values: dict[str, Any] = dict(values or {})
        self._state = state
        self._parent = parent

    @property
    def state(self) -> TransactionState:
        if self._handle is not None:
            t = _host.interface("transactions")
            return {
                t.TransactionState.ACTIVE: TransactionState.ACTIVE,
                t.TransactionState.COMMITTED: TransactionState.COMMITTED,
                t.TransactionState.ROLLED_BACK: TransactionState.ROLLED_BACK,
            }[self._handle.state()]
        return self._state

    def set(self, name: str, value: Any) -> None:
        """Stores a value for later code and for the hooks of the tasks inside."""
        if self._handle is not None:
            try:
                self._handle.set(name, _json.dumps(value))
            except Exception as error:  # noqa: BLE001 - a WIT result error
                text = _host.err_value(error)
                if text is None:
                    raise
                raise exceptions.WeirException(str(text)) from None
            return
        self._values[name] = copy.deepcopy(value)

    def get(self, name: str, default: Any = NotSet) -> Any:
        """A stored value, else the enclosing transaction's, else ``default``; a
        ``ValueError`` when there is none of them."""
        if self._handle is not None:
            text = self._handle.get(name)
            if text is not None:
                return json.loads(text)
        elif name in self._values:
            return copy.deepcopy(self._values[name])
        elif self._parent is not None:
            return self._parent.get(name, default)
        if default is not NotSet:
            return default
        raise ValueError(f"Could not retrieve value for unknown key: {name}")

    def is_committed(self) -> bool:
        return self.state == TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        return self.state == TransactionState.ROLLED_BACK

    def is_active(self) -> bool:
        return self.state == TransactionState.ACTIVE

    def is_staged(self) -> bool:
        return self.state == TransactionState.STAGED

    def is_pending(self) -> bool:
        return self.state == TransactionState.PENDING


def get_transaction() -> Optional[Transaction]:
    """The innermost open transaction of the flow, if any."""
    return _open[-1] if _open else None


def _options(key: Optional[str], isolation_level: Any, commit_mode: Any, overwrite: bool,
             lock_timeout_seconds: Optional[float]) -> Any:
    t = _host.interface("transactions")
    isolation = None
    if isolation_level is not None:
        isolation = {IsolationLevel.READ_COMMITTED: t.IsolationLevel.READ_COMMITTED,
                     IsolationLevel.SERIALIZABLE: t.IsolationLevel.SERIALIZABLE}[IsolationLevel(isolation_level)]
    mode = None
    if commit_mode is not None:
        mode = {CommitMode.EAGER: t.CommitMode.EAGER, CommitMode.LAZY: t.CommitMode.LAZY,
                CommitMode.OFF: t.CommitMode.OFF}[CommitMode(commit_mode)]
    return t.TransactionOptions(
        key=key, isolation=isolation, commit_mode=mode, overwrite=bool(overwrite),
        lock_timeout_seconds=None if lock_timeout_seconds is None else float(lock_timeout_seconds),
    )


@contextlib.contextmanager
def transaction(key: Optional[str] = None, store: Any = None, commit_mode: Any = None,
                isolation_level: Any = None, overwrite: bool = False, write_on_commit: bool = True,
                logger: Any = None, lock_timeout_seconds: Optional[float] = None) -> Iterator[Transaction]:
    """Opens a transaction for the block: it commits when the block ends (as its commit
    mode says) and rolls back when an exception leaves it. ``store``, ``write_on_commit``
    and ``logger`` are Prefect's and ignored (Weir keeps the records)."""
    del store, write_on_commit, logger
    if key is not None and not isinstance(key, str):
        raise TypeError(f"a transaction key is a string, not {key!r}")
    if _context.kind() != _context.FLOW:
        # Outside a flow run (a plain interpreter, or a task's own instance): values only.
        txn = Transaction(key, state=TransactionState.ACTIVE, parent=get_transaction())
        _open.append(txn)
        try:
            yield txn
        except BaseException:
            txn._state = TransactionState.ROLLED_BACK
            raise
        finally:
            _open.remove(txn)
        if txn._state == TransactionState.ACTIVE:
            txn._state = TransactionState.COMMITTED
        return
    t = _host.interface("transactions")
    try:
        handle = t.begin(_options(key, isolation_level, commit_mode, overwrite, lock_timeout_seconds))
    except Exception as error:  # noqa: BLE001 - a WIT result error
        text = _host.err_value(error)
        if text is None:
            raise
        raise exceptions.WeirException(f"cannot begin the transaction: {text}") from None
    txn = Transaction(key, handle=handle, parent=get_transaction())
    _open.append(txn)
    ok = False
    try:
        yield txn
        ok = True
    finally:
        _open.remove(txn)
        try:
            handle.end(ok)
        except Exception as error:  # noqa: BLE001 - a WIT result error
            if ok:
                text = _host.err_value(error)
                if text is None:
                    raise
                raise exceptions.WeirException(f"cannot end the transaction: {text}") from None
        finally:
            handle.__exit__(None, None, None)

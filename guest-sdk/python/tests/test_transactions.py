import pytest

from weir import flow, task
from weir.transactions import TransactionState, get_transaction, transaction


def test_values_fall_back_to_the_parent_and_copies_are_returned():
    with transaction() as parent:
        parent.set("key", [1, 2, 3])
        with transaction() as child:
            assert get_transaction() is child
            assert child.get("key") == [1, 2, 3]
            child.set("key", "child")
            assert child.get("key") == "child"
        value = parent.get("key")
        value.append(4)
        assert parent.get("key") == [1, 2, 3]
        assert parent.get("missing", None) is None
        with pytest.raises(ValueError, match="unknown key: missing"):
            parent.get("missing")
    assert get_transaction() is None
    assert parent.is_committed()


def test_an_exception_rolls_back_outside_a_run():
    with pytest.raises(RuntimeError):
        with transaction(key="k") as txn:
            raise RuntimeError("boom")
    assert txn.state == TransactionState.ROLLED_BACK
    assert txn.key == "k"


def test_transaction_hooks_are_declared_with_the_task():
    def undo(txn):
        pass

    @task(on_rollback=[undo])
    def write_txn_file(contents: str) -> int:
        return len(contents)

    @write_txn_file.on_commit
    def announce(txn):
        pass

    assert write_txn_file.on_rollback_hooks == [undo]
    assert write_txn_file.on_commit_hooks == [announce]
    assert set(write_txn_file.transaction_hooks()) == {
        f"{__name__}.test_transaction_hooks_are_declared_with_the_task.<locals>.undo",
        f"{__name__}.test_transaction_hooks_are_declared_with_the_task.<locals>.announce",
    }
    with pytest.raises(TypeError, match="on_commit hooks must be callables"):
        task(on_commit=[1])(lambda: None)
    with pytest.raises(TypeError):
        flow(on_rollback=[undo])(lambda: None)

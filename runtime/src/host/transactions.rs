//! `weir:flow/transactions`: transactions of the flow run (Prefect's `transaction()`).

use super::HostState;
use super::weir::flow::transactions::{
    self, CommitMode as WitMode, IsolationLevel, TransactionOptions as WitOptions,
    TransactionState as WitState,
};
use crate::model::run::{CommitMode, Isolation, TransactionOptions, TransactionState};
use wasmtime::component::Resource;

/// A transaction of the flow run, by id, in the instance's table. Dropping it does not
/// end it (the SDKs end it; one left open ends with the flow's execution).
pub struct TransactionHandle {
    id: String,
}

fn state_to_wit(s: TransactionState) -> WitState {
    match s {
        TransactionState::Active => WitState::Active,
        TransactionState::Committed => WitState::Committed,
        TransactionState::RolledBack => WitState::RolledBack,
    }
}

fn options_from_wit(o: WitOptions) -> TransactionOptions {
    TransactionOptions {
        key: o.key,
        isolation: o.isolation.map(|i| match i {
            IsolationLevel::ReadCommitted => Isolation::ReadCommitted,
            IsolationLevel::Serializable => Isolation::Serializable,
        }),
        commit_mode: o.commit_mode.map(|m| match m {
            WitMode::Eager => CommitMode::Eager,
            WitMode::Lazy => CommitMode::Lazy,
            WitMode::Off => CommitMode::Off,
        }),
        overwrite: o.overwrite,
        lock_timeout_seconds: o.lock_timeout_seconds,
    }
}

impl transactions::Host for HostState {
    async fn begin(
        &mut self,
        options: WitOptions,
    ) -> wasmtime::Result<Result<Resource<TransactionHandle>, String>> {
        self.charge()?;
        if self.task.is_some() {
            return Ok(Err(
                "transactions are opened by flows; a task run belongs to the transaction its \
                 flow called it in"
                    .into(),
            ));
        }
        let run = self.run("transactions.begin")?.clone();
        match run.begin_transaction(options_from_wit(options)).await {
            Ok(id) => Ok(Ok(self.futures.push(TransactionHandle { id })?)),
            Err(e) => Ok(Err(e)),
        }
    }
}

impl transactions::HostTransaction for HostState {
    async fn id(&mut self, this: Resource<TransactionHandle>) -> wasmtime::Result<String> {
        self.charge()?;
        Ok(self.futures.get(&this)?.id.clone())
    }

    async fn key(&mut self, this: Resource<TransactionHandle>) -> wasmtime::Result<Option<String>> {
        self.charge()?;
        let id = self.futures.get(&this)?.id.clone();
        let run = self.run("transaction.key")?;
        Ok(run.transaction_info(&id).and_then(|(key, _)| key))
    }

    async fn state(&mut self, this: Resource<TransactionHandle>) -> wasmtime::Result<WitState> {
        self.charge()?;
        let id = self.futures.get(&this)?.id.clone();
        let run = self.run("transaction.state")?;
        Ok(state_to_wit(
            run.transaction_info(&id)
                .map_or(TransactionState::RolledBack, |(_, s)| s),
        ))
    }

    async fn set(
        &mut self,
        this: Resource<TransactionHandle>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        self.charge()?;
        let id = self.futures.get(&this)?.id.clone();
        let run = self.run("transaction.set")?;
        Ok(run.transaction_set(&id, name, &value))
    }

    async fn get(
        &mut self,
        this: Resource<TransactionHandle>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        self.charge()?;
        let id = self.futures.get(&this)?.id.clone();
        let run = self.run("transaction.get")?;
        Ok(run.transaction_get(&id, &name))
    }

    async fn end(
        &mut self,
        this: Resource<TransactionHandle>,
        ok: bool,
    ) -> wasmtime::Result<Result<WitState, String>> {
        self.charge()?;
        let id = self.futures.get(&this)?.id.clone();
        let run = self.run("transaction.end")?.clone();
        Ok(run.end_transaction(id, ok).await.map(state_to_wit))
    }

    async fn drop(&mut self, this: Resource<TransactionHandle>) -> wasmtime::Result<()> {
        self.futures.delete(this)?;
        Ok(())
    }
}

//! The host side of the `weir:flow` world: one `bindgen!`, the store data of an instance
//! ([`HostState`]), one module per imported interface, each implementing the generated
//! `Host` trait for [`HostState`] over the run the instance serves ([`Run`]), and the
//! world as the engine runs it ([`Engine`], [`LoadedComponent`]).

mod artifacts;
mod concurrency;
mod context;
pub(crate) mod convert;
mod deployments;
mod flows;
mod logging;
mod run;
mod state;
mod tasks;
mod transactions;
mod variables;

use crate::model::limits::Limits;
use crate::model::manifest::Manifest;
pub use run::{Run, RunInfo};
pub use state::HostState;
pub use tasks::TaskFutureHandle;
use wasmtime::Store;
use wasmtime::component::{InstancePre, Linker};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "weir:flow/component",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "weir:flow/tasks.task-future": TaskFutureHandle,
        "weir:flow/concurrency.occupancy": concurrency::OccupancyHandle,
        "weir:flow/transactions.transaction": transactions::TransactionHandle,
    },
});

pub use self::weir::flow::types as wit;

/// The generated world, named for what it is to the host.
pub type FlowWorld = Component;
/// A pre-linked, type-checked instance template of the world.
pub type FlowWorldPre<T> = ComponentPre<T>;

/// The engine, running components of the `weir:flow` world.
pub type Engine = crate::engine::Engine<FlowWorld>;
/// A component of the `weir:flow` world, ready to run.
pub type LoadedComponent = crate::engine::LoadedComponent<FlowWorld>;

/// Adds Weir's interfaces to a linker.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    Component::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
        linker,
        |state| state,
    )
}

impl crate::engine::World for FlowWorld {
    type Data = HostState;
    type Pre = FlowWorldPre<HostState>;

    fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        add_to_linker(linker)
    }

    fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        FlowWorldPre::new(pre)
    }

    async fn instantiate(pre: &Self::Pre, store: &mut Store<HostState>) -> wasmtime::Result<Self> {
        pre.instantiate_async(store).await
    }

    fn describing(limits: &Limits) -> HostState {
        HostState::new(limits, None, None)
    }

    async fn describe(&self, store: &mut Store<HostState>) -> Result<Manifest, String> {
        let m = self
            .weir_flow_guest()
            .call_describe(store)
            .await
            .map_err(|e| format!("{e:#}"))?;
        convert::manifest_from_wit(m)
    }
}

//! The host side of the `weir:flow` world: one `bindgen!`, one module per imported
//! interface, each implementing the generated `Host` trait for [`HostState`].

mod artifacts;
mod context;
pub(crate) mod convert;
mod deployments;
mod flows;
mod logging;
mod tasks;
mod variables;

pub use crate::engine::sandbox::HostState;
pub use tasks::TaskFutureHandle;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "weir:flow/component",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "weir:flow/tasks.task-future": TaskFutureHandle,
    },
});

pub use self::weir::flow::types as wit;

/// The generated world, named for what it is to the host.
pub type FlowWorld = Component;
/// A pre-linked, type-checked instance template of the world.
pub type FlowWorldPre<T> = ComponentPre<T>;

/// Adds Weir's interfaces to a linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    Component::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
        linker,
        |state| state,
    )
}

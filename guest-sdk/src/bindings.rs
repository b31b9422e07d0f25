//! The WIT bindings of the `weir:flow/component` world, generated once for the whole SDK.
//!
//! The export macro is public (but hidden) so that `weir_sdk::export!()` can expand it in the
//! guest's crate with paths through `::weir_sdk::__private`.
#![allow(missing_docs)]

wit_bindgen::generate!({
    path: "../wit",
    world: "weir:flow/component",
    pub_export_macro: true,
    export_macro_name: "__export_weir_component",
    default_bindings_module: "::weir_sdk::__private::bindings",
    runtime_path: "::weir_sdk::__private::wit_bindgen::rt",
});

pub use exports::weir::flow::guest::Guest;
pub use weir::flow::types::{
    CachePolicy, Definition, Failure, FlowOutput, LogLevel, Manifest, Options, RunKind, State,
    StateEvent, StateType, TransactionEvent,
};

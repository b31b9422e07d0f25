//! Components made by hand against Weir's world, for what no guest toolchain emits: a
//! core instance whose start function loops, and a core module with several memories.

use std::time::{Duration, Instant};
use wasm_encoder::{
    CodeSection, ExportKind, ExportSection, Function, FunctionSection, Instruction, MemorySection,
    MemoryType, Module, StartSection, TypeSection, ValType,
};
use wit_parser::abi::{AbiVariant, WasmType};
use wit_parser::{Resolve, WorldItem};

/// A component of the `component` world whose exports all trap, with `extra_memories`
/// more memories of `pages` 64 KiB pages each, and a start function that loops when
/// `looping_start`.
fn component(extra_memories: u32, pages: u64, looping_start: bool) -> Vec<u8> {
    let mut resolve = Resolve::default();
    let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let pkg = resolve.push_path(&wit).unwrap().0;
    let world = resolve.select_world(&[pkg], Some("component")).unwrap();

    let val = |t: &WasmType| match t {
        WasmType::I64 | WasmType::PointerOrI64 => ValType::I64,
        WasmType::F32 => ValType::F32,
        WasmType::F64 => ValType::F64,
        _ => ValType::I32,
    };
    let (mut types, mut funcs, mut code, mut exports) = (
        TypeSection::new(),
        FunctionSection::new(),
        CodeSection::new(),
        ExportSection::new(),
    );
    let mut n = 0u32;
    let mut add = |params: Vec<ValType>, results: Vec<ValType>, body: &[Instruction]| {
        types.ty().function(params, results);
        funcs.function(n);
        let mut f = Function::new([]);
        for i in body {
            f.instruction(i);
        }
        f.instruction(&Instruction::End);
        code.function(&f);
        n += 1;
        n - 1
    };
    let mut names = Vec::new();
    for (key, item) in &resolve.worlds[world].exports {
        let WorldItem::Interface { id, .. } = item else {
            continue;
        };
        let iface = resolve.name_world_key(key);
        for (name, f) in &resolve.interfaces[*id].functions {
            let sig = resolve.wasm_signature(AbiVariant::GuestExport, f);
            let i = add(
                sig.params.iter().map(val).collect(),
                sig.results.iter().map(val).collect(),
                &[Instruction::Unreachable],
            );
            names.push((format!("{iface}#{name}"), i));
        }
    }
    let realloc = add(
        vec![ValType::I32; 4],
        vec![ValType::I32],
        &[Instruction::Unreachable],
    );
    let start = add(
        vec![],
        vec![],
        &if looping_start {
            vec![
                Instruction::Loop(wasm_encoder::BlockType::Empty),
                Instruction::Br(0),
                Instruction::End,
            ]
        } else {
            vec![]
        },
    );
    let mut memories = MemorySection::new();
    for i in 0..=extra_memories {
        memories.memory(MemoryType {
            minimum: if i == 0 { 1 } else { pages },
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
    }
    for (name, i) in &names {
        exports.export(name, ExportKind::Func, *i);
    }
    exports.export("cabi_realloc", ExportKind::Func, realloc);
    exports.export("memory", ExportKind::Memory, 0);

    let mut module = Module::new();
    module
        .section(&types)
        .section(&funcs)
        .section(&memories)
        .section(&exports)
        .section(&StartSection {
            function_index: start,
        })
        .section(&code);
    let mut bytes = module.finish();
    wit_component::embed_component_metadata(
        &mut bytes,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&bytes)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_start_function_that_loops_is_stopped_within_the_describe_time() {
    let limits = weir::model::limits::Limits {
        describe_time: Duration::from_secs(2),
        ..crate::support::test_limits()
    };
    let engine = weir::host::Engine::new(limits, None).unwrap();
    let t = Instant::now();
    let err = engine
        .load(&component(0, 0, true))
        .await
        .expect_err("refused");
    let message = err.to_string();
    assert!(
        message.contains("did not start"),
        "{message} (after {:?})",
        t.elapsed()
    );
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "stopped at its bound, not later: {:?}",
        t.elapsed()
    );
    // The same component without the loop fits the world (it is refused only when asked
    // to describe itself, which traps).
    let err = engine.load(&component(0, 0, false)).await.err().unwrap();
    assert!(err.to_string().contains("describe"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_module_with_several_memories_is_refused_at_upload() {
    // Memory is counted per instance across all its memories (one per core module); a
    // module of its own with several is refused before anything runs.
    let engine = weir::host::Engine::new(crate::support::test_limits(), None).unwrap();
    let err = engine
        .load(&component(3, 384, false))
        .await
        .expect_err("refused");
    let message = err.to_string();
    assert!(
        message.starts_with("invalid WebAssembly component")
            && message.contains("memories count of 4"),
        "{message}"
    );
}

//! Links `src/trace_pc.c`, which counts the blocks of the C++ libraries
//! (OpenH264) as AFL++ coverage. Whole-archive: nothing in Rust refers to
//! it, only the instrumented C++ linked after it.

fn main() {
    println!("cargo:rerun-if-changed=src/trace_pc.c");
    cc::Build::new()
        .file("src/trace_pc.c")
        .link_lib_modifier("+whole-archive")
        .compile("face_fuzz_trace_pc");
}

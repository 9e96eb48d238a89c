//! `cargo xtask fuzz --target mp4-sparse-header`: see `face_fuzz_targets::mp4_sparse_header`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| face_fuzz_targets::mp4_sparse_header(data));
}

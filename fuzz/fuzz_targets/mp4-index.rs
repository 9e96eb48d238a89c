//! `cargo xtask fuzz --target mp4-index`: see `face_fuzz_targets::mp4_index`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| face_fuzz_targets::mp4_index(data));
}

//! `cargo xtask fuzz --target mp4-index`: see `face_fuzz::mp4_index`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| face_fuzz::mp4_index(data));
}

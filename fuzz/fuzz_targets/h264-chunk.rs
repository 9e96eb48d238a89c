//! `cargo xtask fuzz --target h264-chunk`: see `face_fuzz_targets::h264_chunk`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| face_fuzz_targets::h264_chunk(data));
}
